// One import point for tests: the public API plus the validators they exercise directly.
export * from '../lib';
export { checkDevice, checkDtype, checkShape } from '../lib/dtype';
