/** `npm run bench`: runs every benchmark and prints Markdown tables (copy them into RESULTS.md). */
import { foundationBench } from './foundation.js';

const tables = [await foundationBench()];
console.log(`\n_${new Date().toISOString()}, node ${process.version}_`);
void tables;
