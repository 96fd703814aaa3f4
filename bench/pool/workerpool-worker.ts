// workerpool's worker script: the same tasks, registered by name.
import workerpool from 'workerpool';
import { square, squareAll, sum } from './tasks.js';

workerpool.worker({ square, squareAll, sum });
