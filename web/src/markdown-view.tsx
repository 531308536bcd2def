import { useLoad } from './api.js';
import { Await } from './components.js';

/** Rendered Markdown; the renderer is fetched the first time one is shown. */
export function Markdown({ source, resolve }: { source: string; resolve: (href: string, isImage: boolean) => string | Promise<string> }) {
  const html = useLoad(async () => (await import('./markdown.js')).renderMarkdown(source, resolve), [source]);
  return <Await loaded={html}>{(value) => <div class="markdown" dangerouslySetInnerHTML={{ __html: value }} />}</Await>;
}
