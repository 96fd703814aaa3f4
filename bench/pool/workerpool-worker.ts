// workerpool's worker script: the same tasks, registered by name.
import workerpool from 'workerpool';
import { square, sum } from './tasks.js';

workerpool.worker({ square, sum });
