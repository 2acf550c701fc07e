// ts-jest transpiles each file alone (tsconfig's isolatedModules: fast); `npm run typecheck` checks types.
/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  transform: { '^.+\\.ts$': 'ts-jest' },
  setupFiles: ['<rootDir>/test/setup.ts'],
  // each worker loads libtorch (~1 s); two workers match the two cores CI has
  maxWorkers: 2,
  testTimeout: 120000,
};
