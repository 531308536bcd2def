import { Marked, type Token } from 'marked';

/**
 * Markdown to HTML for READMEs, loaded on demand (its own chunk). Raw HTML in the source is shown as text and
 * only http(s), mailto and relative links survive, so a README cannot run script in this page.
 */

const SAFE_SCHEME = /^(https?:|mailto:)/i;
const ANY_SCHEME = /^[a-z][a-z0-9+.-]*:/i;

const escapeHtml = (text: string) => text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/**
 * `resolve(href, isImage)` turns a relative link into an address in this interface or the API (asynchronously
 * for images when a token is in use: they need a file link).
 */
export function renderMarkdown(source: string, resolve: (href: string, isImage: boolean) => string | Promise<string>): Promise<string> {
  const marked = new Marked({
    gfm: true,
    async: true,
    renderer: { html: ({ text }) => escapeHtml(text) },
    async walkTokens(token: Token) {
      if (token.type !== 'link' && token.type !== 'image') return;
      const href = token.href.trim();
      if (href.startsWith('#') || SAFE_SCHEME.test(href)) return;
      token.href = ANY_SCHEME.test(href) || href.startsWith('//') ? '#' : await resolve(href, token.type === 'image');
    },
  });
  return marked.parse(source, { async: true });
}
