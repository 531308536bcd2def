import type { Author } from '../../src/client/index.js';

/** Who commits from this browser (name and email), remembered between visits. */

const AUTHOR_KEY = 'yoke.author';

export function loadAuthor(): Author {
  try {
    const stored = JSON.parse(localStorage.getItem(AUTHOR_KEY) ?? 'null') as Author | null;
    if (stored && typeof stored.name === 'string' && typeof stored.email === 'string') return stored;
  } catch {}
  return { name: '', email: '' };
}

export function saveAuthor(author: Author): void {
  try {
    localStorage.setItem(AUTHOR_KEY, JSON.stringify(author));
  } catch {}
}
