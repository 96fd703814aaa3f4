/**
 * Starts real nats-server processes for tests and benchmarks: one server with
 * JetStream on free loopback ports, or a three-server JetStream cluster.
 * Stores live in a temporary directory removed on stop. scripts/setup-nats.mjs
 * installs nats-server; where it could not, `natsSkip` says why and the NATS
 * tests skip.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Path of nats-server, or undefined. */
export function natsServerPath(): string | undefined {
  for (const p of ['/usr/bin/nats-server', '/usr/local/bin/nats-server', '/usr/sbin/nats-server']) {
    const r = spawnSync(p, ['--version'], { encoding: 'utf8' });
    if (r.status === 0) return p;
  }
  const r = spawnSync('sh', ['-c', 'command -v nats-server'], { encoding: 'utf8' });
  const p = r.stdout.trim();
  return r.status === 0 && p !== '' ? p : undefined;
}

const binary = natsServerPath();

/** A skip reason for node:test when nats-server is missing, else false. */
export const natsSkip: string | false =
  binary === undefined
    ? 'nats-server is not installed and scripts/setup-nats.mjs could not install it (needs root or sudo: apt-get install nats-server)'
    : false;

/** A free TCP port on 127.0.0.1 (the kernel picks; a tiny race remains until the server binds it). */
export async function freePort(): Promise<number> {
  const s = createServer();
  s.listen(0, '127.0.0.1');
  await once(s, 'listening');
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

export interface NatsServerOptions {
  /** Extra config file text (auth blocks, max_payload, ...). */
  config?: string;
  /** Enable JetStream (default true). */
  jetstream?: boolean;
}

/** One running nats-server. */
export class NatsServer {
  readonly process: ChildProcess;
  readonly port: number;
  readonly name: string;
  readonly dir: string;
  readonly #configFile: string;
  log = '';
  #exited: Promise<unknown>;

  private constructor(proc: ChildProcess, port: number, name: string, dir: string, configFile: string) {
    this.process = proc;
    this.port = port;
    this.name = name;
    this.dir = dir;
    this.#configFile = configFile;
    proc.stderr!.setEncoding('utf8').on('data', (d: string) => {
      this.log += d;
      if (this.log.length > 200_000) this.log = this.log.slice(-100_000);
    });
    this.#exited = once(proc, 'exit');
  }

  /** `nats://127.0.0.1:port`. */
  get url(): string {
    return `nats://127.0.0.1:${this.port}`;
  }

  get pid(): number {
    return this.process.pid!;
  }

  get running(): boolean {
    return this.process.exitCode === null && this.process.signalCode === null;
  }

  /** Writes `config` and starts a server from it; resolves when it is ready. @internal */
  static async launch(name: string, dir: string, port: number, config: string): Promise<NatsServer> {
    if (binary === undefined) throw new Error(natsSkip as string);
    const file = join(dir, `${name}.conf`);
    writeFileSync(file, config);
    const proc = spawn(binary, ['-c', file], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, MULTIPROC_TEST_CHILD: '1' } });
    const s = new NatsServer(proc, port, name, dir, file);
    await s.#ready();
    return s;
  }

  /** Starts one server on a free loopback port, JetStream on. */
  static async start(options: NatsServerOptions = {}): Promise<NatsServer> {
    const dir = mkdtempSync(join(tmpdir(), 'mpt-nats-'));
    for (let attempt = 0; ; attempt++) {
      const port = await freePort();
      const js = options.jetstream === false ? '' : `jetstream { store_dir: "${join(dir, 'js')}" }\n`;
      try {
        const s = await NatsServer.launch('n0', dir, port, `server_name: n0\nlisten: "127.0.0.1:${port}"\n${js}${options.config ?? ''}\n`);
        s.#ownsDir = true;
        return s;
      } catch (err) {
        if (attempt >= 3) {
          rmSync(dir, { recursive: true, force: true });
          throw err;
        }
      }
    }
  }

  #ownsDir = false;

  async #ready(): Promise<void> {
    const deadline = Date.now() + 20_000;
    while (!this.log.includes('Server is ready')) {
      if (!this.running) throw new Error(`nats-server ${this.name} exited before it was ready:\n${this.log}`);
      if (Date.now() > deadline) {
        this.process.kill('SIGKILL');
        throw new Error(`nats-server ${this.name} was not ready after 20 s:\n${this.log}`);
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** The server's log lines that are not [INF] (slow consumers, errors), for diagnostics. */
  warnings(): string[] {
    return this.log.split('\n').filter((l) => l.trim() !== '' && (!l.includes('[INF]') || /slow consumer|disconnect|error/i.test(l)));
  }

  /** SIGKILL, as a crash would; resolves once it is gone. */
  async kill(): Promise<void> {
    if (!this.running) return;
    this.process.kill('SIGKILL');
    await this.#exited;
  }

  /** Starts the same server again (same port, config and store). */
  async restart(): Promise<NatsServer> {
    await this.kill();
    const s = await NatsServer.launch(this.name, this.dir, this.port, (await import('node:fs')).readFileSync(this.#configFile, 'utf8'));
    return s;
  }

  /** Stops the server (SIGTERM, then SIGKILL after 5 s) and removes its store. Idempotent. */
  async stop(): Promise<void> {
    if (this.running) {
      this.process.kill('SIGTERM');
      const t = setTimeout(() => this.process.kill('SIGKILL'), 5000);
      await this.#exited;
      clearTimeout(t);
    }
    if (this.#ownsDir) rmSync(this.dir, { recursive: true, force: true });
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }
}

/** Three servers in one JetStream cluster on loopback. */
export class NatsCluster {
  servers: NatsServer[];
  readonly dir: string;

  private constructor(servers: NatsServer[], dir: string) {
    this.servers = servers;
    this.dir = dir;
  }

  /** Client URLs of every server. */
  get urls(): string[] {
    return this.servers.map((s) => s.url);
  }

  get pids(): number[] {
    return this.servers.filter((s) => s.running).map((s) => s.pid);
  }

  static async start(size = 3): Promise<NatsCluster> {
    const dir = mkdtempSync(join(tmpdir(), 'mpt-natsc-'));
    const ports: number[] = [];
    const routes: number[] = [];
    for (let i = 0; i < size; i++) {
      ports.push(await freePort());
      routes.push(await freePort());
    }
    const servers: NatsServer[] = [];
    try {
      const launching = ports.map((port, i) => {
        const others = routes.filter((_, j) => j !== i).map((r) => `"nats-route://127.0.0.1:${r}"`);
        const conf =
          `server_name: n${i}\nlisten: "127.0.0.1:${port}"\n` +
          `jetstream { store_dir: "${join(dir, `n${i}`)}" }\n` +
          `cluster { name: "mpt", listen: "127.0.0.1:${routes[i]}", routes: [${others.join(', ')}] }\n`;
        return NatsServer.launch(`n${i}`, dir, port, conf).then((s) => servers.push(s));
      });
      await Promise.all(launching);
    } catch (err) {
      for (const s of servers) await s.stop();
      rmSync(dir, { recursive: true, force: true });
      throw err;
    }
    servers.sort((a, b) => a.name.localeCompare(b.name));
    return new NatsCluster(servers, dir);
  }

  async stop(): Promise<void> {
    for (const s of this.servers) await s.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }
}
