// spawn + channels: start a Node process with a named channel, wait until it
// is ready, hand it jobs and read the results; close() shuts it down cleanly.
import { fileURLToPath } from 'node:url';
import { onShutdown, parentChannel, ready, spawn } from 'multiproc';

interface Job {
  id: number;
  text: string;
}

if (process.argv[2] === 'worker') {
  const jobs = await parentChannel<Job | { id: number; length: number }>('jobs');
  onShutdown(() => console.log('worker: shutting down'));
  ready();
  for await (const job of jobs) if ('text' in job) await jobs.send({ id: job.id, length: job.text.length });
} else {
  await using worker = spawn(fileURLToPath(import.meta.url), { args: ['worker'], channels: { jobs: 'stream' } });
  await worker.ready; // the child called ready()
  const jobs = worker.channel('jobs');
  for (const [id, text] of ['hello', 'multiproc'].entries()) await jobs.send({ id, text });
  const results = [await jobs.receive({ timeout: 10_000 }), await jobs.receive({ timeout: 10_000 })];
  console.log(`results: ${JSON.stringify(results)}`);
  const exit = await worker.close(); // a shutdown request, then SIGTERM, then SIGKILL
  console.log(`worker exited: ${exit.reason}, code ${exit.code}`);
}
