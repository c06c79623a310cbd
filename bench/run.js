/**
 * `npm run bench`: every benchmark, printed as Markdown tables. Each module exports
 * run(options) → rows and print(rows); BENCH=name,name selects some of them.
 */
const benches = {
  scores: () => require('./scores'),
  components: () => require('./components'),
  'eval-real': () => require('./eval-real'),
  'scores-peer': () => require('./scores-peer'),
  prediction: () => require('./prediction'),
  pipeline: () => require('./pipeline'),
  calibration: () => require('./calibration'),
  'real-parity': () => require('./real-parity'),
  'fpr-threshold': () => require('./fpr-threshold'),
  backend: () => require('./backend'),
  serve: () => require('./serve'),
  journal: () => require('./journal'),
};

async function main() {
  const only = process.env.BENCH ? process.env.BENCH.split(',') : Object.keys(benches);
  for (const name of only) {
    if (!benches[name]) throw new Error(`unknown benchmark "${name}" (have: ${Object.keys(benches).join(', ')})`);
    const bench = benches[name]();
    const rows = await bench.run({});
    bench.print(rows);
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
