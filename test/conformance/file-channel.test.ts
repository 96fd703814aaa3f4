// The Channel contract over FileChannel: a writer appending to a file and a
// reader following it (restarts and several writers: test/file-channel/).
import { FileChannel } from '../../src/index.js';
import { conformance } from './contract.js';
import { tempDir } from '../helpers/temp-files.js';
import { leakGuard } from '../helpers/leak-guard.js';

leakGuard();
const tmp = tempDir('file-conformance');

conformance({
  name: 'file',
  // Each append is four system calls under a file lock (~15 us here) plus the contract's md5s: 200,000 keeps this file near half a minute.
  stressCount: 200_000,
  // A file has no room to run out of: trySend only says false while another writer holds the lock.
  bounded: false,
  // The file outlives its writers: closing one does not end readers.
  peerCloseEnds: false,
  async pair(opts) {
    const path = tmp.file('channel');
    const a = FileChannel.openWriter<any>(path, { codec: opts.codec, maxMessageSize: opts.maxMessageSize });
    const b = FileChannel.openReader<any>(path, { codec: opts.codec, maxMessageSize: opts.maxMessageSize, pollInterval: 200 });
    return {
      a,
      b,
      async cleanup() {
        b.destroy();
        a.destroy();
      },
    };
  },
});
