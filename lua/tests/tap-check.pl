#!/usr/bin/perl
# SPDX-License-Identifier: MIT
# Parses a TAP file written by rigor.report.tap with TAP::Parser, the way a TAP 14 harness
# reads it: the top-level stream, then each "# Subtest:" block (4-space indented) as a TAP
# stream of its own, including its YAML diagnostics. Prints one summary line per stream:
#   top version=14 tests=2 passed=1 failed=1 skipped=0 parse_errors=0 bailout=
#   sub name=power tests=3 passed=1 failed=1 skipped=1 parse_errors=0 yaml=1 messages=a|b
# Test::Harness before 3.48 rejects "TAP version 14"; then the version line is read as 13
# (TAP 14 is a superset that TAP 13 parsers read) and "mapped14=1" is printed.
use strict;
use warnings;
use TAP::Parser;

my $file = shift or die "usage: tap-check.pl FILE\n";
open my $fh, '<', $file or die "cannot open '$file': $!\n";
my @lines = <$fh>;
close $fh;
chomp @lines;

my $mapped = 0;
if (@lines && $lines[0] eq 'TAP version 14' && $TAP::Parser::VERSION < 3.48) {
	$mapped = 1;
}

sub parse {
	my ($label, $extra, @tap) = @_;
	$tap[0] = 'TAP version 13' if $mapped && @tap && $tap[0] eq 'TAP version 14';
	my $p = TAP::Parser->new({ tap => join("\n", @tap) . "\n" });
	my ($yaml, @msgs) = (0);
	my $bail = '';
	while (my $r = $p->next) {
		if ($r->is_yaml) {
			$yaml++;
			my $d = $r->data;
			push @msgs, ref $d eq 'HASH' && defined $d->{message} ? $d->{message} : '?';
		}
		$bail = $r->explanation if $r->is_bailout;
	}
	my $sk = () = $p->skipped;
	my @errs = $p->parse_errors;
	printf "%s%s tests=%d passed=%d failed=%d skipped=%d parse_errors=%d yaml=%d bailout=%s messages=%s\n",
		$label, $extra, $p->tests_run, scalar($p->passed) - $sk, scalar($p->failed), $sk,
		scalar(@errs), $yaml, $bail, join('|', map { s/\n/\\n/gr } @msgs);
	print "# parse error: $_\n" for @errs;
}

# Top level: drop indented subtest lines (a TAP 13 parser ignores them anyway).
parse('top', " version=" . (($lines[0] // '') =~ /^TAP version (\d+)/ ? $1 : 12) . " mapped14=$mapped",
	grep { !/^    / } @lines);

my ($name, @sub);
for my $l (@lines, '') {
	if ($l =~ /^# Subtest: (.*)$/) {
		$name = $1;
		@sub = ('TAP version 13');
	} elsif (defined $name && $l =~ /^    (.*)$/) {
		push @sub, $1;
	} elsif (defined $name) {
		parse('sub', " name=$name", @sub);
		undef $name;
	}
}
