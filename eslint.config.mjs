// Lint: typescript-eslint recommended rules, plus the project's own invariants.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import prettier from 'eslint-config-prettier';
import importBoundaries from './eslint.imports.cjs';

export default tseslint.config(
  { ignores: ['node_modules/', 'cdk.out/', 'coverage/', '**/*.js', '**/*.mjs', '**/*.cjs', 'docs/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  prettier,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-restricted-syntax': [
        'error',
        {
          // Acknowledgements go through lib/compliance/acknowledge.ts, which enforces their scope.
          selector: "CallExpression[callee.property.name='acknowledge'][callee.object.callee.property.name='of']",
          message:
            'Use acknowledge() from lib/compliance/acknowledge.ts: one construct, one finding, a specific reason.',
        },
      ],
    },
  },
  {
    // Type-aware rules: a promise nobody awaits loses its error, and `!` asserts what the types
    // cannot prove. Kept in its own block so other rule sets compose around it.
    files: ['**/*.ts'],
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/no-non-null-assertion': 'error',
    },
  },
  {
    files: ['lib/**/*.ts'],
    rules: {
      // Constructs receive validated configuration; only bin/ reads the environment.
      'no-restricted-properties': [
        'error',
        { object: 'process', property: 'env', message: 'Pass configuration in props.' },
      ],
    },
  },
  {
    files: ['lib/**/*.ts', 'lambda/**/*.ts'],
    rules: {
      // AGPL-3.0 dev tooling: never in a construct or a Lambda bundle.
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            { group: ['@cloud-copilot/*'], message: 'iam-simulate is AGPL dev tooling: use it from test/ or tools/.' },
            {
              group: ['**/tools/access-proof', '**/tools/access-proof/*'],
              message: 'Dev tooling: not for lib/ or lambda/.',
            },
          ],
        },
      ],
    },
  },
  {
    files: ['lib/compliance/acknowledge.ts'],
    rules: { 'no-restricted-syntax': 'off' },
  },
  {
    files: ['test/**/*.ts'],
    rules: {
      // A wrong assumption in a test throws and fails that test; production code narrows instead.
      '@typescript-eslint/no-non-null-assertion': 'off',
      'no-restricted-syntax': [
        'error',
        {
          selector: 'CallExpression[callee.object.name=/^(it|test|describe)$/][callee.property.name=/^(only|skip)$/]',
          message: 'No focused or skipped tests.',
        },
        {
          selector: 'CallExpression[callee.name=/^(xit|xtest|xdescribe|fit|fdescribe)$/]',
          message: 'No focused or skipped tests.',
        },
      ],
    },
  },
  // Imports run one way: lambda/ -> contracts/ <- lib/, bin/ (eslint.imports.cjs).
  ...importBoundaries,
);
