import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { BadRequest, Forbidden, NotFound, shown, Unauthorized } from '../core/errors.js';
import { formatScope, grants, parseDuration, parseScope, type AccessLevel, type Scope } from '../core/scopes.js';
import type { MetaStore, TokenRecord } from '../storage/meta-store.js';

/** What the server shows of a token: everything but the hash of its secret. */
export type TokenView = Omit<TokenRecord, 'secretHash'>;

export interface NewToken {
  name: unknown;
  email: unknown;
  scopes: unknown;
  /** A duration such as `30d`; absent or null: never expires. */
  expires?: unknown;
}

/** The part of the API a request touches: a repository, a namespace, or the server as a whole. */
export interface AccessTarget {
  namespace: string | null;
  repo: string | null;
}

const hashSecret = (secret: string) => createHash('sha256').update(secret, 'utf8').digest('hex');

/** How long a file link works: long enough to start a download or a player, short enough not to be a credential worth keeping. */
export const FILE_LINK_SECONDS = 10 * 60;

/** A link's proof: `{token id}.{expiry, unix seconds}.{signature}` (`.` is in neither of the first two). */
export interface FileLink {
  param: string;
  expiresAt: string;
}

/**
 * The signature of a file link: HMAC-SHA256 keyed by the stored hash of the token's secret (never sent, shared
 * by every process using the metadata store), over what the link may do: read one file of one repository
 * until one time. `resource` is `{commit id}/{path}`, so the link names bytes, not whatever a branch holds later.
 */
function linkSignature(token: TokenRecord, expires: number, target: { namespace: string; repo: string }, resource: string): Buffer {
  return createHmac('sha256', token.secretHash).update(JSON.stringify(['yoke-file-link-v1', token.id, expires, target.namespace, target.repo, resource])).digest();
}

const view = ({ secretHash: _, ...token }: TokenRecord): TokenView => token;

/**
 * Tokens and the one decision of who may do what. A secret is 32 random bytes, shown once and
 * stored only as its SHA-256 (a secret that random needs no slow hash); each request looks its token
 * up in the metadata store, so a revocation holds at once for every process sharing that store.
 */
export class AuthService {
  constructor(private readonly meta: MetaStore) {}

  async create(request: NewToken, now = new Date()): Promise<{ token: TokenView; secret: string }> {
    const text = (value: unknown, what: string) => {
      if (typeof value !== 'string' || value.trim() === '') throw new BadRequest(`${what} is required`);
      return value.trim();
    };
    const name = text(request.name, 'name');
    const email = text(request.email, 'email');
    if (!Array.isArray(request.scopes) || request.scopes.length === 0) throw new BadRequest('scopes is required: one or more of read|write|admin[:namespace[/repo]]');
    const scopes = request.scopes.map((s) => formatScope(parseScope(typeof s === 'string' ? s : shown(s))));
    const expires = request.expires === undefined || request.expires === null ? null : parseDuration(typeof request.expires === 'string' ? request.expires : shown(request.expires));
    const secret = `yoke_${randomBytes(32).toString('base64url')}`;
    const token: TokenRecord = {
      id: randomBytes(8).toString('hex'),
      name,
      email,
      scopes,
      secretHash: hashSecret(secret),
      createdAt: now.toISOString(),
      expiresAt: expires === null ? null : new Date(now.getTime() + expires).toISOString(),
    };
    await this.meta.createToken(token);
    return { token: view(token), secret };
  }

  async list(): Promise<TokenView[]> {
    return (await this.meta.listTokens()).map(view);
  }

  async revoke(id: string): Promise<void> {
    if (!(await this.meta.deleteToken(id))) throw new NotFound(`Token ${id} not found`);
  }

  /**
   * The token a request's `Authorization: Bearer …` names, if it grants `level` on `target`:
   * 401 without one or for one unknown, revoked or expired; 403 when its scopes fall short.
   */
  async authorize(authorization: string | undefined, level: AccessLevel, target: AccessTarget, now = new Date()): Promise<TokenView> {
    return view(await this.bearer(authorization, level, target, now));
  }

  /**
   * A link that lets a browser element without headers (img, audio, video, a download) read one committed
   * file: the bearer must be allowed to read the repository; `resource` must be `{commit id}/{path}`. The
   * link works for FILE_LINK_SECONDS, and only while its token is valid and still grants read there.
   */
  async signFileLink(authorization: string | undefined, target: { namespace: string; repo: string }, resource: string, now = new Date()): Promise<FileLink> {
    const token = await this.bearer(authorization, 'read', target, now);
    const expires = Math.floor(now.getTime() / 1000) + FILE_LINK_SECONDS;
    return { param: `${token.id}.${expires}.${linkSignature(token, expires, target, resource).toString('base64url')}`, expiresAt: new Date(expires * 1000).toISOString() };
  }

  /** The token behind a file link, if the link was signed for exactly this repository and resource and is still good (401 otherwise, 403 if the token lost read there). */
  async authorizeFileLink(param: string, target: { namespace: string; repo: string }, resource: string, now = new Date()): Promise<TokenView> {
    const [id, expiresText, signature, ...extra] = param.split('.');
    const expires = Number(expiresText);
    if (extra.length > 0 || !id || !signature || !/^\d{1,12}$/.test(expiresText ?? '')) throw new Unauthorized('Malformed file link');
    if (expires * 1000 <= now.getTime()) throw new Unauthorized('This file link has expired: ask for a new one');
    const token = await this.meta.findToken(id);
    const expected = token ? linkSignature(token, expires, target, resource) : null;
    const given = Buffer.from(signature, 'base64url');
    if (!token || !expected || given.length !== expected.length || !timingSafeEqual(given, expected)) throw new Unauthorized('Invalid file link (it names another file, or its token was revoked)');
    return view(this.check(token, 'read', target, now));
  }

  /** The token a request's `Authorization: Bearer …` names, checked for `level` on `target`. */
  private async bearer(authorization: string | undefined, level: AccessLevel, target: AccessTarget, now: Date): Promise<TokenRecord> {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization ?? '');
    if (!match) throw new Unauthorized('This server requires a token: send Authorization: Bearer <token>');
    const token = await this.meta.findTokenBySecret(hashSecret(match[1]));
    if (!token) throw new Unauthorized('Unknown or revoked token');
    return this.check(token, level, target, now);
  }

  private check(token: TokenRecord, level: AccessLevel, target: AccessTarget, now: Date): TokenRecord {
    if (token.expiresAt !== null && Date.parse(token.expiresAt) <= now.getTime()) throw new Unauthorized(`Token ${token.id} expired at ${token.expiresAt}`);
    const scopes: Scope[] = token.scopes.map(parseScope);
    if (!grants(scopes, level, target)) {
      const what = target.namespace === null ? 'this server' : target.repo === null ? `namespace ${target.namespace}` : `${target.namespace}/${target.repo}`;
      throw new Forbidden(`Token ${token.id} (${token.scopes.join(', ')}) does not grant ${level} on ${what}`);
    }
    return token;
  }
}
