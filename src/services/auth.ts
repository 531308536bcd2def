import { createHash, randomBytes } from 'node:crypto';
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
    const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization ?? '');
    if (!match) throw new Unauthorized('This server requires a token: send Authorization: Bearer <token>');
    const token = await this.meta.findTokenBySecret(hashSecret(match[1]));
    if (!token) throw new Unauthorized('Unknown or revoked token');
    if (token.expiresAt !== null && Date.parse(token.expiresAt) <= now.getTime()) throw new Unauthorized(`Token ${token.id} expired at ${token.expiresAt}`);
    const scopes: Scope[] = token.scopes.map(parseScope);
    if (!grants(scopes, level, target)) {
      const what = target.namespace === null ? 'this server' : target.repo === null ? `namespace ${target.namespace}` : `${target.namespace}/${target.repo}`;
      throw new Forbidden(`Token ${token.id} (${token.scopes.join(', ')}) does not grant ${level} on ${what}`);
    }
    return view(token);
  }
}
