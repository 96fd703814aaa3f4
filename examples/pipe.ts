// Pipe: an anonymous pipe handed to a child as its fd 3; messages keep their boundaries.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Pipe } from 'multiproc';

interface Result {
  n: number;
  square: number;
}

if (process.argv[2] === 'child') {
  const results = Pipe.fromFd(3, 'writer', { codec: 'json' });
  for (let n = 1; n <= 3; n++) await results.send({ n, square: n * n });
  await results.close(); // the parent's loop ends here
} else {
  using pipe = Pipe.create();
  const results = pipe.reader<Result>({ codec: 'json' });
  spawn(process.execPath, [fileURLToPath(import.meta.url), 'child'], {
    stdio: ['inherit', 'inherit', 'inherit', pipe.childEnd('writer')], // fd 3 in the child
  });
  const squares: number[] = [];
  for await (const r of results) squares.push(r.square);
  console.log(`squares from the child: ${squares.join(' ')}`); // 1 4 9
}
