/** MIME type and Oxen data type of a file, from its extension (no content sniffing). */

const TYPES: Record<string, [mime: string, dataType: DataType]> = {
  txt: ['text/plain', 'text'],
  md: ['text/markdown', 'text'],
  json: ['application/json', 'text'],
  jsonl: ['application/jsonl', 'tabular'],
  ndjson: ['application/x-ndjson', 'tabular'],
  csv: ['text/csv', 'tabular'],
  tsv: ['text/tab-separated-values', 'tabular'],
  parquet: ['application/vnd.apache.parquet', 'tabular'],
  arrow: ['application/vnd.apache.arrow.file', 'tabular'],
  xml: ['application/xml', 'text'],
  yaml: ['application/yaml', 'text'],
  yml: ['application/yaml', 'text'],
  html: ['text/html', 'text'],
  py: ['text/x-python', 'text'],
  js: ['text/javascript', 'text'],
  ts: ['text/plain', 'text'],
  jpg: ['image/jpeg', 'image'],
  jpeg: ['image/jpeg', 'image'],
  png: ['image/png', 'image'],
  gif: ['image/gif', 'image'],
  webp: ['image/webp', 'image'],
  bmp: ['image/bmp', 'image'],
  tif: ['image/tiff', 'image'],
  tiff: ['image/tiff', 'image'],
  svg: ['image/svg+xml', 'image'],
  mp4: ['video/mp4', 'video'],
  mov: ['video/quicktime', 'video'],
  webm: ['video/webm', 'video'],
  avi: ['video/x-msvideo', 'video'],
  mp3: ['audio/mpeg', 'audio'],
  wav: ['audio/wav', 'audio'],
  flac: ['audio/flac', 'audio'],
  ogg: ['audio/ogg', 'audio'],
  m4a: ['audio/mp4', 'audio'],
  pdf: ['application/pdf', 'binary'],
  zip: ['application/zip', 'binary'],
  gz: ['application/gzip', 'binary'],
  tar: ['application/x-tar', 'binary'],
  npy: ['application/octet-stream', 'binary'],
  pt: ['application/octet-stream', 'binary'],
  safetensors: ['application/octet-stream', 'binary'],
};

export type DataType = 'dir' | 'text' | 'image' | 'video' | 'audio' | 'tabular' | 'binary';

export function extensionOf(name: string): string {
  const dot = name.lastIndexOf('.');
  return dot <= 0 ? '' : name.slice(dot + 1).toLowerCase();
}

export function describeFile(name: string): { mimeType: string; dataType: DataType; extension: string } {
  const extension = extensionOf(name);
  const [mimeType, dataType] = TYPES[extension] ?? ['application/octet-stream', 'binary'];
  return { mimeType, dataType, extension };
}
