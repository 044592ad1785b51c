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
};
