/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  transform: {
    // Type checking is `npm run typecheck`'s job; transpile-only keeps the suite fast.
    '^.+\\.ts$': ['ts-jest', { diagnostics: false }],
    // jose ships ESM only; transpile it to CommonJS for jest (Node 20 cannot require ESM).
    '^.+/node_modules/jose/.+\\.js$': ['ts-jest', { diagnostics: false, tsconfig: { allowJs: true } }],
  },
  transformIgnorePatterns: ['/node_modules/(?!jose/)'],
  setupFiles: ['<rootDir>/test/support/jest-setup.ts'],
  // One PostgreSQL per worker (test/support/postgres.ts), stopped when the run ends.
  globalSetup: '<rootDir>/test/support/global-setup.ts',
  globalTeardown: '<rootDir>/test/support/global-teardown.ts',
  testTimeout: 120000,
  // Synth-heavy suites are CPU bound; two workers match the CI machine.
  maxWorkers: 2,
  // A worker that loaded aws-cdk-lib into several test files' module registries spends 0.3-1 s of
  // CPU in Node's own teardown after its 'exit' event (measured with strace on the 2-core machine:
  // no open handles, only heap teardown). Jest's 500 ms default force-kills it and reports a leak;
  // a real leak (a handle that never closes) still hits this limit and is still reported.
  workerGracefulExitTimeout: 5000,
};
