// What the benchmark reads from /proc about the processes it measures:
// their CPU ticks (llmgw's also by thread), children, memory, threads and
// descriptors.
'use strict';
const {execFileSync} = require('child_process');
const fs = require('fs');

// Clock ticks per second, the unit of the CPU times in /proc.
const HZ = +execFileSync('getconf', ['CLK_TCK'], {encoding: 'utf8'}).trim() || 100;

// CPU ticks used so far by processes and all their threads.
function ticks(pids) {
  let sum = 0;
  for (const pid of pids) {
    try {
      const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
      sum += +f[11] + +f[12];
    } catch (e) { /* gone */ }
  }
  return sum;
}

// The number after "key:" in a /proc file's text (status, smaps_rollup).
const procField = (text, key) => +(new RegExp(`^${key}:\\s+(\\d+)`, 'm').exec(text) || [0, 0])[1];

// The text of a /proc file ("stat", "status") of every thread of processes,
// in turn, to "fn"; a thread or process that is gone is passed over.
function eachThread(pids, file, fn) {
  for (const pid of pids) {
    let tasks = [];
    try { tasks = fs.readdirSync(`/proc/${pid}/task`); } catch (e) { /* gone */ }
    for (const tid of tasks) {
      let text;
      try { text = fs.readFileSync(`/proc/${pid}/task/${tid}/${file}`, 'utf8'); } catch (e) { continue; }
      fn(text);
    }
  }
}

// llmgw's CPU ticks by thread: its upstream loop, usage writer and spool
// closer, which live as long as the process, and the rest ("workers": the
// worker threads, which come and go, and the idle main thread), whose
// ticks are the process's total less those three's.
const LONG_LIVED = {'llmgw-upstream': 'upstream', 'llmgw-usage': 'usage', 'llmgw-spool': 'spool'};
function threadTicks(pids) {
  const out = {workers: ticks(pids), upstream: 0, usage: 0, spool: 0};
  eachThread(pids, 'stat', st => {
    const kind = LONG_LIVED[st.slice(st.indexOf('(') + 1, st.lastIndexOf(')'))];
    if (!kind) return;
    const f = st.slice(st.lastIndexOf(')') + 2).split(' ');
    out[kind] += +f[11] + +f[12];
    out.workers -= +f[11] + +f[12];
  });
  return out;
}

// Context switches so far, voluntary or not, of processes' threads: how
// often they slept and were woken, or were put off the CPU.  A thread that
// has ended takes its count with it (llmgw's workers live while a load
// lasts).
function switches(pids) {
  let sum = 0;
  eachThread(pids, 'status', st =>
    sum += procField(st, 'voluntary_ctxt_switches') + procField(st, 'nonvoluntary_ctxt_switches'));
  return sum;
}

// A process and its children (uvicorn's workers, nginx's).
function family(pid) {
  const out = [pid];
  for (const p of fs.readdirSync('/proc').filter(x => /^\d+$/.test(x))) {
    try {
      const ppid = +fs.readFileSync(`/proc/${p}/stat`, 'utf8').split(') ')[1].split(' ')[1];
      if (ppid === pid) out.push(+p);
    } catch (e) { /* gone */ }
  }
  return out;
}

function status(pid) {
  try {
    const st = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    return {rss_kb: procField(st, 'VmRSS'), threads: procField(st, 'Threads'),
      fds: fs.readdirSync(`/proc/${pid}/fd`).length};
  } catch (e) {
    return {rss_kb: 0, threads: 0, fds: 0};
  }
}

// Resident memory of a process by kind (KB): its threads' stacks (the
// anonymous mappings of "stackKb", the worker stack size) and all else.
function stacks(pid, stackKb) {
  let stack = 0, n = 0, rss = 0, size = 0;
  try {
    for (const line of fs.readFileSync(`/proc/${pid}/smaps`, 'utf8').split('\n')) {
      const m = /^([0-9a-f]+)-([0-9a-f]+) \S+ \S+ \S+ \S+\s*(\S*)/.exec(line);
      if (m) { size = m[3] ? 0 : (parseInt(m[2], 16) - parseInt(m[1], 16)) / 1024; continue; }
      const r = /^Rss:\s+(\d+)/.exec(line);
      if (!r) continue;
      rss += +r[1];
      if (size === stackKb) { stack += +r[1]; n++; }
    }
  } catch (e) { /* gone */ }
  return {stack_kb: stack, stacks: n, other_kb: rss - stack};
}

module.exports = {HZ, ticks, threadTicks, switches, family, procField, status, stacks};
