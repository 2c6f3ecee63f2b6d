// The benchmark's report: its lines, as printed and as saved in
// bench/results/, and how its numbers are written.
'use strict';
const fs = require('fs');
const path = require('path');

const report = [];
const say = (line = '') => { report.push(line); console.log(line); };

const f1 = (x) => (x === null || x === undefined || Number.isNaN(x)) ? '-' : (+x).toFixed(x >= 100 ? 0 : x >= 10 ? 1 : 2);
// CPU per 1,000 requests: three decimals, so that 15 and 25 us differ.
const f3 = (x) => (x === null || x === undefined || Number.isNaN(x)) ? '-' : (+x).toFixed(3);
const ratio = (a, b) => (a && b) ? (a / b).toFixed(2) : '-';
const pad = (s, n) => String(s).padEnd(n);
const lpad = (s, n) => String(s).padStart(n);

const median = (xs) => {
  const v = xs.filter(x => x !== null && !Number.isNaN(x)).sort((a, b) => a - b);
  return v.length ? (v.length % 2 ? v[(v.length - 1) / 2] : (v[v.length / 2 - 1] + v[v.length / 2]) / 2) : null;
};

// The report so far, in bench/results/<name>-<when it started>.txt.
function save(name, started) {
  const out = path.join(__dirname, 'results', `${name}-${started.toISOString().slice(0, 16).replace(/:/g, '')}.txt`);
  fs.mkdirSync(path.dirname(out), {recursive: true});
  fs.writeFileSync(out, report.join('\n') + '\n');
  say(`\nsaved in ${path.relative(path.dirname(__dirname), out)}`);
}

module.exports = {say, save, f1, f3, ratio, pad, lpad, median};
