/**
 * The child's side of a Supervisor's roles: a child calls the roles its spec
 * `connects` to, and a role serves its callers. The supervisor relays both
 * ways (see relay.ts). Addon-free, also exported by `multiproc/child`.
 *
 * ```ts
 * // renderer.ts, spec { name: 'renderer', connects: ['browser'], permissions: {} }
 * const browser = await connectRole<BrowserApi>('browser', { timeout: 5000 });
 * const text = await browser.readFile('/srv/data/page.html');
 *
 * // browser.ts, spec { name: 'browser', permissions: { fsRead: ['/srv/data'] } }
 * await serveRole({ readFile: (path: string) => readFile(path, 'utf8') });
 * ready();
 * ```
 */
import type { Channel } from '../channel/channel.js';
import { typeError, validateString } from '../errors.js';
import { parent, parentChannel } from '../process/child.js';
import { connect, type ConnectOptions, type Remote } from '../rpc/connect.js';
import { expose, type ExposeOptions, type RpcServer } from '../rpc/expose.js';

const ROLE = 'role:';
const CLIENT = 'client:';

/**
 * Opens the channel to the role `role` that the supervisor set up for this
 * child (its spec lists `role` in `connects`) and returns a typed RPC proxy
 * over it (see `connect()`). The role's instance serves it with
 * {@link serveRole}. Calls made while that instance is down wait in the
 * supervisor until it is back; calls it was serving when it exited fail with
 * `ERR_MULTIPROC_CLOSED`. Set a `timeout`: a hung role answers nothing.
 *
 * Errors (rejections): `ERR_INVALID_STATE` (not started by a supervisor),
 * `ERR_INVALID_ARG_VALUE` (the spec does not connect to `role`; the message
 * lists the roles it does connect to), `ERR_INVALID_ARG_TYPE`.
 */
export async function connectRole<Api extends object>(role: string, options?: ConnectOptions): Promise<Remote<Api>> {
  validateString(role, 'role');
  return connect<Api>(await roleChannel(role), options);
}

/**
 * The raw channel to the role `role` (structured codec), for messages other
 * than RPC. The supervisor relays every message type and priority.
 *
 * Errors: as {@link connectRole}.
 */
export async function roleChannel<T = unknown>(role: string): Promise<Channel<T>> {
  validateString(role, 'role');
  if (parent === null) throw typeError('ERR_INVALID_STATE', `connectRole('${role}'): this process was not started by a Supervisor`);
  const name = ROLE + role;
  if (!parent.channelNames.includes(name)) {
    const roles = parent.channelNames.filter((n) => n.startsWith(ROLE)).map((n) => `'${n.slice(ROLE.length)}'`);
    throw typeError('ERR_INVALID_ARG_VALUE', `This child does not connect to role '${role}' (add it to the spec's connects); it connects to: ${roles.join(', ') || 'no role'}`);
  }
  return parentChannel<T>(name, { codec: 'structured' });
}

/**
 * Serves `api` to every client the supervisor routes to this role instance
 * (one `expose()` per client channel) and returns the servers. Call it before
 * `ready()`: the supervisor holds calls until the role is ready. A role
 * without clients gets an empty array.
 *
 * Errors (rejections): `ERR_INVALID_STATE` (not started by a supervisor),
 * `ERR_INVALID_ARG_TYPE`, and what `expose()` throws.
 */
export async function serveRole(api: object, options?: ExposeOptions): Promise<RpcServer[]> {
  if (api === null || (typeof api !== 'object' && typeof api !== 'function')) throw typeError('ERR_INVALID_ARG_TYPE', 'The "api" argument must be an object');
  if (parent === null) throw typeError('ERR_INVALID_STATE', 'serveRole(): this process was not started by a Supervisor');
  const servers: RpcServer[] = [];
  for (const name of parent.channelNames.filter((n) => n.startsWith(CLIENT))) {
    servers.push(expose(api, await parentChannel(name, { codec: 'structured' }), options));
  }
  return servers;
}
