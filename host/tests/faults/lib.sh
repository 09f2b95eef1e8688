# SPDX-License-Identifier: MIT
# The fault matrix's one assertion. Source after host/tests/tap.sh (it needs $T, $RIGOR,
# ok/nok). Each call of `fault` is one matrix case and one TAP line; it fails with every
# broken promise listed, so a regression says which promise broke.
#
#   fault DESC RC MSG_RE CMD...
#
# runs CMD (stdin from /dev/null, killed after $F_TIMEOUT s, default 60: a hang is a failed
# case, not a stuck `make test`) and checks:
#   - the exit code is RC;
#   - stderr or stdout matches the extended regex MSG_RE (skipped when MSG_RE is empty);
#   - no success line: nothing matches $F_SUCCESS_RE (default: a flash summary or a PASS
#     verdict) unless RC is 0;
#   - with F_RIG=FILE: the rig's lock is free and its DUT is off (`rigor power status`);
#   - with F_TARGET=FILE and F_SHA=SHA256: the target's content hash is SHA;
#     with F_TARGET=FILE and F_SHA=absent: FILE does not exist;
#     with F_TARGET=FILE and F_SHA=invalid: FILE holds no partition table or boot sector
#     in its first MiB (a failed flash must leave a card that cannot boot);
#   - with F_REPORTS=DIR: every report there (junit.xml, results.json, results.tap) exists
#     and parses.
# The F_* variables apply to one call: set them on the call's line (F_RIG=... fault ...).
# `fault_done` prints the case count as a TAP comment; tap_done ends the stream.
F_CASES=0

fault_sha() { sha256sum "$1" 2>/dev/null | cut -d' ' -f1; }

# Valid reports: JUnit through xmllint, JSON through python's parser, TAP through the
# same TAP::Parser that scripts/run-tests uses (plan present, no parse error).
fault_reports() {
	d=$1
	for f in junit.xml results.json results.tap; do
		[ -s "$d/$f" ] || { echo "missing or empty report $d/$f"; return; }
	done
	xmllint --noout "$d/junit.xml" 2>/dev/null || echo "junit.xml does not parse"
	python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$d/results.json" 2>/dev/null ||
		echo "results.json does not parse"
	# Debian 12's TAP::Parser (3.44) predates TAP 14: parse the stream as version 13, which
	# reads the same top-level test points and plan.
	perl -MTAP::Parser -e '
		local $/; open(my $f, "<", $ARGV[0]) or exit 1; my $t = <$f>;
		$t =~ s/\ATAP version 14\n/TAP version 13\n/;
		my $p = TAP::Parser->new({ tap => $t });
		1 while $p->next;
		exit(($p->parse_errors || !defined $p->plan) ? 1 : 0)' "$d/results.tap" ||
		echo "results.tap does not parse"
	ls "$d" | grep -q '\.tmp' && echo "temporary report files left in $d"
}

fault() {
	f_desc=$1 f_want=$2 f_msg=$3
	shift 3
	F_CASES=$((F_CASES + 1))
	timeout -k 5 "${F_TIMEOUT:-60}" "$@" >"$T/out" 2>"$T/err" </dev/null
	f_rc=$?
	f_why=
	[ "$f_rc" = "$f_want" ] || f_why="$f_why exit $f_rc, want $f_want;"
	[ "$f_rc" = 124 ] && f_why="$f_why HUNG (killed after ${F_TIMEOUT:-60} s);"
	if [ -n "$f_msg" ] && ! grep -Eq -- "$f_msg" "$T/err" "$T/out"; then
		f_why="$f_why no /$f_msg/ in the output;"
	fi
	if [ "$f_want" != 0 ] &&
	   grep -Eq -- "${F_SUCCESS_RE:-^flashed |verdict PASS}" "$T/out" "$T/err"; then
		f_why="$f_why a success line was printed;"
	fi
	if [ -n "$F_RIG" ]; then
		if ! "$RIGOR" --rig "$F_RIG" power status --json >"$T/ps" 2>&1; then
			f_why="$f_why rig not usable afterwards (lock held?): $(head -c 200 "$T/ps");"
		elif ! grep -q '"power":"off"' "$T/ps"; then
			f_why="$f_why DUT left powered: $(head -c 200 "$T/ps");"
		fi
	fi
	if [ -n "$F_TARGET" ]; then
		case $F_SHA in
		absent) [ ! -e "$F_TARGET" ] || f_why="$f_why $F_TARGET was created;" ;;
		invalid)
			if [ -e "$F_TARGET" ] && head -c 1048576 "$F_TARGET" | tr -d '\0' | head -c 1 | grep -q .; then
				f_why="$f_why $F_TARGET still has data in its first MiB (bootable);"
			fi ;;
		*) [ "$(fault_sha "$F_TARGET")" = "$F_SHA" ] || f_why="$f_why $F_TARGET changed;" ;;
		esac
	fi
	if [ -n "$F_REPORTS" ]; then
		f_bad=$(fault_reports "$F_REPORTS")
		[ -z "$f_bad" ] || f_why="$f_why $(echo "$f_bad" | tr '\n' ';')"
	fi
	if [ -z "$f_why" ]; then
		ok "fault: $f_desc"
	else
		echo "# $f_desc:$f_why"
		nok "fault: $f_desc"
	fi
}

fault_done() { echo "# fault cases: $F_CASES"; }
