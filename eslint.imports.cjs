// Imports run one way (contracts/README.md). Kept in its own CommonJS module so that
// test/foundation/imports.test.ts lints probes with exactly these blocks.
const UP = String.raw`^(\.\./)+`;

/** @type {import('eslint').Linter.Config[]} */
module.exports = [
  {
    files: ['lambda/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              regex: `${UP}(lib|bin)(/|$)`,
              message: 'Handlers never import the CDK app: share constants and types through contracts/.',
            },
            {
              group: ['aws-cdk-lib', 'aws-cdk-lib/*', 'constructs', 'cdk-nag', 'cdk-nag/*'],
              message: 'Handlers never import the CDK: it would be bundled into the function.',
            },
          ],
        },
      ],
    },
  },
  {
    files: ['lib/**/*.ts', 'bin/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              regex: `${UP}lambda(/|$)`,
              message:
                'The CDK app imports only contracts/ from the handler side (handler files are bundling entries).',
            },
          ],
        },
      ],
    },
  },
  {
    files: ['contracts/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              regex: `${UP}(lib|lambda|bin|scripts|bench|test)(/|$)`,
              message: 'contracts/ imports only other contracts.',
            },
            {
              // Anything that is neither relative nor a `node:` built-in is a package.
              regex: String.raw`^(?!node:|\.)`,
              message: 'contracts/ imports no package, only Node.js built-ins (with the node: prefix).',
            },
          ],
        },
      ],
    },
  },
];
