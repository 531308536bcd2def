import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/**
 * A full garbage collection after every 10,000 multipart parts the server takes in (issue 15: server RSS flat during
 * ingest). Parsing and storing a part leaves garbage that V8 promotes to the old generation: objects already dead
 * there but not yet collected keep the young ones they point to alive through scavenges (the streams' and promises'
 * linked structures), so nearly all a scavenge finds alive is promoted, ~8 KB a part. V8 then lets the old generation
 * grow to several times its live size before a full collection: RSS rose ~100 MiB over 100,000 files. One collection
 * per 10,000 parts costs 45-75 ms of the main thread, against seconds of work for those parts. Setting V8's heap
 * growth low instead (`--heap-growing-percent=10`) bounded RSS too, for 60 % more CPU per file (bench/RESULTS.md).
 */
const PARTS_PER_COLLECTION = 10_000;

let collector: (() => void) | undefined;

/** Collects all garbage now (a full, blocking collection). */
export function fullGarbageCollection(): void {
  if (collector === undefined) {
    // `gc` is defined only in contexts made after --expose-gc is set: a new one, asked for its global.
    setFlagsFromString('--expose-gc');
    collector = runInNewContext('gc') as () => void;
  }
  collector();
}

/** A counter that runs `collect` once every `every` calls. */
export function collectEvery(every: number, collect: () => void = fullGarbageCollection): () => void {
  let since = 0;
  return () => {
    if (++since < every) return;
    since = 0;
    collect();
  };
}

/** Called for every multipart part the server reads (multipartParts). */
export const partTakenIn = collectEvery(PARTS_PER_COLLECTION);
