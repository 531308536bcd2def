/**
 * Tree walks in rounds. A walk is a set of steps, each needing some stored nodes and then deciding what
 * to read next; the runner reads the nodes of many steps in one call. So a walk costs a read per level of
 * the tree (or per WALK_BATCH nodes), not one per node: the difference between microseconds (SQLite) and
 * a round trip per node (PostgreSQL).
 */

/** Nodes read in one call, at most: enough for a level of most trees, few enough to hold in memory. */
export const WALK_BATCH = 1000;

/** One step of a walk: the ids it needs, and what it does with their nodes (in the order of `ids`). */
export interface WalkStep<N> {
  ids: string[];
  /** Returns the steps this one leads to (run in a later round). */
  then(nodes: N[]): WalkStep<N>[] | void | Promise<WalkStep<N>[] | void>;
}

/**
 * Runs `start` and every step it leads to; `read` gets the distinct ids of a round and answers their
 * nodes in that order. The newest steps run first, so memory holds the steps along a few paths of the
 * tree rather than a whole level of a wide one; a round reads at most `batch` ids unless one step needs
 * more. Yields after each round, so that a caller streaming what the steps found can send it.
 */
export async function* walkInRounds<N>(read: (ids: string[]) => Promise<N[]>, start: Array<WalkStep<N>>, batch = WALK_BATCH): AsyncGenerator<void> {
  const pending = [...start].reverse();
  while (pending.length > 0) {
    await runRound(read, pending, batch);
    yield;
  }
}

/** `walkInRounds` for walks that produce nothing on the way (without a generator's cost per round). */
export async function runInRounds<N>(read: (ids: string[]) => Promise<N[]>, start: Array<WalkStep<N>>, batch = WALK_BATCH): Promise<void> {
  const pending = [...start].reverse();
  while (pending.length > 0) await runRound(read, pending, batch);
}

/** Takes a round of steps off the top of `pending` (a stack), runs them, and pushes the steps they lead to. */
async function runRound<N>(read: (ids: string[]) => Promise<N[]>, pending: Array<WalkStep<N>>, batch: number): Promise<void> {
  const round: Array<WalkStep<N>> = [];
  const ids = new Set<string>();
  while (pending.length > 0 && (round.length === 0 || ids.size + pending[pending.length - 1].ids.length <= batch)) {
    const step = pending.pop()!;
    round.push(step);
    for (const id of step.ids) ids.add(id);
  }
  const wanted = [...ids];
  const nodes = wanted.length === 0 ? [] : await read(wanted);
  const byId = new Map(wanted.map((id, i) => [id, nodes[i]]));
  const next: Array<WalkStep<N>> = [];
  for (const step of round) {
    const more = await step.then(step.ids.map((id) => byId.get(id)!));
    if (more) next.push(...more);
  }
  // Reversed onto the stack, so that steps run in the order they were made.
  for (let i = next.length - 1; i >= 0; i--) pending.push(next[i]);
}
