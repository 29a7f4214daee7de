#!/usr/bin/env python3
"""Counts the locked atomic instructions a callgrind run executed.

callgrind counts a `lock cmpxchg` (a parking_lot lock or unlock), a
`lock xadd`/`lock inc` (an Arc clone, a counter) or an `xchg` with memory
as one instruction each, but on this class of machine each costs some
20-30 cycles: on the request/response path they were most of the wall
time (see docs/performance.md, "Session 10"). This script finds them.

Usage:
    valgrind --tool=callgrind --dump-instr=yes \
        --callgrind-out-file=/tmp/rr.out <bench exe> --bench
    tools/locked-ops.py /tmp/rr.out <bench exe> --per 10000 [--top 40]

It disassembles the executable (objdump), sums the execution counts of
every locked instruction in it, divides by --per (the number of round
trips, datagrams, connections of the run) and lists the sites, each named
by its innermost frames outside the atomics, locks and Arc (addr2line
over the inlining chain, so LTO-inlined code is named too).
"""
import argparse
import collections
import re
import subprocess
import sys


def locked_addresses(exe):
    out = subprocess.run(['objdump', '-d', '--no-show-raw-insn', exe],
                         capture_output=True, text=True, check=True).stdout
    found = set()
    for line in out.split('\n'):
        m = re.match(r'\s*([0-9a-f]+):\s+(.*)', line)
        if not m:
            continue
        ins = m.group(2)
        if ins.startswith('lock') or (ins.startswith('xchg') and '(' in ins):
            found.add(int(m.group(1), 16))
    return found


def executions(callgrind_out, exe, locked):
    """Execution count per locked address of `exe` (self cost, not calls)."""
    objs = {}
    cur = None
    addr = 0
    skip = False
    counts = collections.Counter()
    name = exe.rsplit('/', 1)[-1]
    for line in open(callgrind_out):
        line = line.rstrip('\n')
        if not line:
            continue
        if line.startswith(('ob=', 'cob=')):
            m = re.match(r'c?ob=\((\d+)\)(?: (.*))?', line)
            if m.group(2):
                objs[m.group(1)] = m.group(2)
            if line.startswith('ob='):
                cur = m.group(1)
            continue
        if line.startswith('calls='):
            skip = True  # the next cost line is the call's inclusive cost
            continue
        if line[0] in '0123456789+-*':
            tok = line.split()
            a = tok[0]
            if a.startswith('0x'):
                addr = int(a, 16)
            elif a[0] in '+-':
                addr += int(a)
            if skip:
                skip = False
                continue
            if cur and objs.get(cur, '').endswith(name) and addr in locked:
                counts[addr] += int(tok[-1])
    return counts


PLUMBING = re.compile(r'(core::sync::atomic|parking_lot|lock_api|alloc::sync|'
                      r'core::ptr::drop_in_place|<alloc::sync|core::ops::function|'
                      r'std::sync|core::option|core::result)')


def sites(exe, counts, per, top):
    addrs = [a for a, c in counts.items() if c / per >= 0.5]
    out = subprocess.run(['addr2line', '-a', '-i', '-f', '-C', '-e', exe] +
                         [hex(a) for a in addrs],
                         capture_output=True, text=True).stdout.split('\n')
    chains = {}
    cur = None
    i = 0
    while i < len(out):
        line = out[i]
        if line.startswith('0x'):
            cur = int(line, 16)
            chains[cur] = []
            i += 1
        elif line.strip() and i + 1 < len(out):
            chains[cur].append((line, out[i + 1]))
            i += 2
        else:
            i += 1
    agg = collections.Counter()
    for a in addrs:
        chain = chains.get(a, [])
        op = next((f.split('::')[-1] for f, _ in chain
                   if 'core::sync::atomic' in f), 'lock')
        outer = [(f, loc) for f, loc in chain if not PLUMBING.search(f)][:3]
        where = ' <- '.join(f"{f.split('::')[-1][:40]}@{loc.rsplit('/', 1)[-1]}"
                            for f, loc in outer)
        agg[(op, where)] += counts[a]
    for (op, where), c in agg.most_common(top):
        print(f'{c / per:7.1f}  [{op}] {where}')


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('callgrind_out')
    p.add_argument('exe')
    p.add_argument('--per', type=float, default=1.0,
                   help='divide counts by this (round trips, datagrams, ...)')
    p.add_argument('--top', type=int, default=40)
    a = p.parse_args()
    locked = locked_addresses(a.exe)
    counts = executions(a.callgrind_out, a.exe, locked)
    total = sum(counts.values())
    print(f'locked instructions: {total:,} ({total / a.per:.1f} per unit)')
    if a.top:
        sites(a.exe, counts, a.per, a.top)


if __name__ == '__main__':
    sys.exit(main())
