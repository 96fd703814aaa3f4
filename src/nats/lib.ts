/**
 * The NATS client libraries, loaded on first use. Importing the package
 * would otherwise load them in every process, also in the many that never
 * talk to NATS (pool workers, children): they take about as long to load as
 * the rest of the package.
 *
 * {@link Nats.connect} loads the transport before any connection exists, so
 * code that holds a {@link Nats} may use {@link natsClient} synchronously.
 *
 * @internal
 */
import type * as Transport from '@nats-io/transport-node';
import type * as JetStream from '@nats-io/jetstream';

let transport: typeof Transport | undefined;
let jetStream: typeof JetStream | undefined;

/** Loads `@nats-io/transport-node` (once). @internal */
export async function loadNatsClient(): Promise<typeof Transport> {
  return (transport ??= await import('@nats-io/transport-node'));
}

/** `@nats-io/transport-node`, already loaded by {@link loadNatsClient} (every connection did). @internal */
export function natsClient(): typeof Transport {
  if (transport === undefined) throw new Error('internal: the NATS client is used before any connection loaded it');
  return transport;
}

/** Loads `@nats-io/jetstream` (once). @internal */
export async function loadJetStream(): Promise<typeof JetStream> {
  return (jetStream ??= await import('@nats-io/jetstream'));
}
