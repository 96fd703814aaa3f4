/**
 * `multiproc/child`: the child's side of spawn() without the native addon,
 * for children sandboxed with `permissions.addons: false`. The same functions
 * as the package root exports.
 */
export { parent, parentChannel, ready, onShutdown, ParentPort } from './child.js';
export type { ShutdownHandler, ParentChannelOptions } from './child.js';
export { registerTransport } from './transports.js';
export { connectRole, roleChannel, serveRole } from '../supervisor/child.js';
export type { ChannelDescriptor, DescribeContext, OpenContext, TransportRegistration } from './transports.js';
export type { Channel, Sender, Receiver, SendOptions, ReceiveOptions, Message, ChannelStats, ChannelTraits } from '../channel/channel.js';
