/** The typed client of Yoke's HTTP API (docs/UI.md, "The typed client"). */
export { ApiError, encodePath, YokeClient, type Author, type ClientOptions, type UploadFile, type UploadTransport } from './yoke-client.js';
export type * from './types.js';
