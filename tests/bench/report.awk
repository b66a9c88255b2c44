# Prints the figures of tests/bench/run.  The first file contains a line
# a server, "NAME RPS P50_MS P99_MS N2XX NOTHER ERRORS [ROWS]", and the
# second a line a batch run, "NAME SECONDS ROWS".  The variable duration
# is the seconds of each wrk run.  A target whose figures are missing is
# a FAIL marked "not measured".

FILENAME == ARGV[1] {
	order[++servers] = $1
	rps[$1] = $2
	p50[$1] = $3
	p99[$1] = $4
	good[$1] = $5
	other[$1] = $6
	errors[$1] = $7
	rows[$1] = $8
	next
}

{
	batches[++nbatch] = $1
	seconds[$1] = $2
	stored[$1] = $3
}

function label(name) {
	if (name == "nginx") return "nginx return 200"
	if (name == "persistent") return "whook --persistent"
	if (name == "pipeline") return "whook --persistent, sh"
	if (name == "inetd") return "whook inetd mode"
	if (name == "inetd-persistent") return "inetd, --persistent"
	if (name == "webhook") return "webhook + sqlite3"
	if (name == "flow") return "flows.d/transactions"
	if (name == "jq-sqlite3") return "jq | sqlite3 .import"
	if (name == "jq-parse") return "jq -c . (parse, print)"
	return name
}

function rows_per_second(name) {
	return rows[name] / duration
}

function batch_rate(name) {
	return seconds[name] > 0 ? stored[name] / seconds[name] : 0
}

# target TEXT MEASURED OK: prints PASS or FAIL for one target.
function target(text, measured, ok) {
	if (!measured)
		printf "FAIL %s (not measured)\n", text
	else
		printf "%s %s\n", ok ? "PASS" : "FAIL", text
}

function print_servers(    i, name, ratio, base) {
	base = ("nginx" in rps) ? rps["nginx"] : 0
	printf "\n%-22s %9s %7s %8s %6s %8s %5s %5s %7s %7s\n", "server",
	    "req/s", "p50 ms", "p99 ms", "/nginx", "2xx", "other", "err",
	    "rows", "rows/s"
	for (i = 1; i <= servers; i++) {
		name = order[i]
		ratio = base > 0 ? sprintf("%.3f", rps[name] / base) : "-"
		printf "%-22s %9.1f %7.2f %8.2f %6s %8d %5d %5d", label(name),
		    rps[name], p50[name], p99[name], ratio, good[name],
		    other[name], errors[name]
		if (rows[name] == "")
			printf " %7s %7s\n", "-", "-"
		else
			printf " %7d %7.1f\n", rows[name], rows_per_second(name)
	}
	for (i = 1; i <= servers; i++) {
		name = order[i]
		if (rows[name] != "" && good[name] > rows[name])
			printf "LOST %d rows: %s returned 2xx for %d " \
			    "requests and stored %d rows\n",
			    good[name] - rows[name],
			    label(name), good[name], rows[name]
	}
}

function print_batches(    i, name, base, ratio) {
	base = ("jq-sqlite3" in seconds) ? batch_rate("jq-sqlite3") : 0
	printf "\n%-22s %9s %7s %8s %6s\n", "batch", "seconds", "rows",
	    "rows/s", "/jq"
	for (i = 1; i <= nbatch; i++) {
		name = batches[i]
		ratio = "-"
		if (base > 0)
			ratio = sprintf("%.3f", batch_rate(name) / base)
		printf "%-22s %9.2f %7d %8.1f %6s\n", label(name),
		    seconds[name], stored[name], batch_rate(name), ratio
	}
}

# The "in" tests come first, because awk creates an element that an
# expression only reads.
function print_targets(    p, w, i, b, has_p, has_w, has_i, has_b, has_n) {
	p = "persistent"
	w = "webhook"
	i = "inetd"
	b = "jq-sqlite3"
	has_p = p in rps
	has_w = w in rps
	has_i = i in rps
	has_n = "nginx" in rps
	has_b = (b in seconds) && ("flow" in seconds)
	print ""
	target("--persistent req/s >= 25% of nginx", has_p && has_n,
	    rps[p] >= 0.25 * rps["nginx"])
	target("--persistent p99 < 20 ms", has_p, p99[p] < 20)
	target("--persistent lost no row", has_p, good[p] <= rows[p])
	target("--persistent rows/s > 10 x adnanh/webhook", has_p && has_w,
	    rows_per_second(p) > 10 * rows_per_second(w))
	target("inetd mode rows/s > adnanh/webhook", has_i && has_w,
	    rows_per_second(i) > rows_per_second(w))
	target("inetd mode, --persistent, rows/s > adnanh/webhook",
	    ("inetd-persistent" in rps) && has_w,
	    rows_per_second("inetd-persistent") > rows_per_second(w))
	target("batch flow rows/s >= 2 x jq | sqlite3", has_b,
	    batch_rate("flow") >= 2 * batch_rate(b))
}

END {
	print_servers()
	print_batches()
	print_targets()
}
