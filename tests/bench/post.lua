-- wrk script for tests/bench/run: each request POSTs a payment event of
-- about 1.5 KB with an id no other request of the run has, and the
-- X-Webhook-Secret header.  The responses are counted by status, and the
-- last two lines wrk prints are "statuses CODE=N ..." and
-- "status 2xx N other N".
-- Arguments after "--": SECRET_FILE TAG, where TAG makes the ids of one
-- run differ from those of another.

local threads = {}
local filler = string.rep("x", 1400)
local sent = 0
ok2xx = 0
other = 0
by_status = {}

function setup(thread)
	thread:set("thread_number", #threads + 1)
	table.insert(threads, thread)
end

function init(args)
	local file = assert(io.open(args[1], "r"))
	local secret = file:read("*l")

	file:close()
	id_prefix = "ch_" .. args[2] .. "_" .. thread_number .. "_"
	wrk.method = "POST"
	wrk.headers["Content-Type"] = "application/json"
	wrk.headers["X-Webhook-Secret"] = secret
end

function request()
	local body

	sent = sent + 1
	body = string.format('{"id":"%s%d","amount":%d,"currency":"usd",' ..
	    '"customer":"cus_%d","filler":"%s"}', id_prefix, sent,
	    1000 + sent % 9000, sent % 1000, filler)
	return wrk.format(nil, nil, nil, body)
end

function response(status, headers, body)
	by_status[status] = (by_status[status] or 0) + 1
	if status >= 200 and status < 300 then
		ok2xx = ok2xx + 1
	else
		other = other + 1
	end
end

function done(summary, latency, requests)
	local good, bad = 0, 0
	local counts, codes = {}, {}

	for _, thread in ipairs(threads) do
		good = good + thread:get("ok2xx")
		bad = bad + thread:get("other")
		for code, n in pairs(thread:get("by_status")) do
			counts[code] = (counts[code] or 0) + n
		end
	end
	for code in pairs(counts) do
		table.insert(codes, code)
	end
	table.sort(codes)
	io.write("statuses")
	for _, code in ipairs(codes) do
		io.write(string.format(" %d=%d", code, counts[code]))
	end
	io.write("\n")
	io.write(string.format("status 2xx %d other %d\n", good, bad))
end
