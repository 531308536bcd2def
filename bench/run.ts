/**
 * `npm run bench`: runs the benchmarks and prints Markdown tables (copy them into RESULTS.md).
 * `npm run bench -- versions` runs one of them.
 */
import { compareBench } from './compare.js';
import { foundationBench } from './foundation.js';
import { versionsBench } from './versions.js';
import { workspacesBench } from './workspaces.js';
import { syncBench } from './sync.js';
import { loadBench } from './load.js';
import { scaleBench } from './scale.js';
import { framesBench } from './frames.js';
import { speedBench } from './speed.js';
import { commitsBench } from './commits.js';

const benches: Record<string, () => Promise<string>> = { foundation: foundationBench, versions: versionsBench, workspaces: workspacesBench, compare: compareBench, sync: syncBench, load: loadBench, scale: scaleBench, frames: framesBench, speed: speedBench, commits: commitsBench };
const chosen = process.argv.slice(2);
for (const name of chosen.length > 0 ? chosen : Object.keys(benches)) {
  if (!benches[name]) throw new Error(`Unknown benchmark ${name}; choose from ${Object.keys(benches).join(', ')}`);
  await benches[name]();
}
console.log(`\n_${new Date().toISOString()}, node ${process.version}_`);
