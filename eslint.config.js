// ESLint with typescript-eslint's type-aware rules. Chosen over Biome for those: a promise that
// is neither awaited nor handed to waitUntil is a real bug class in Workers (the runtime may
// cancel it), and only type information finds it. Formatting is Prettier's job; the layering
// of src/ is dependency-cruiser's (.dependency-cruiser.cjs).
import js from '@eslint/js';
import globals from 'globals';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  {
    // templates/ hold {{placeholders}}; what `meshwork init` makes of them is bundled by test/e2e/package.test.ts.
    ignores: [
      'node_modules/',
      '**/.wrangler/',
      '.meshwork/',
      'dist/',
      'coverage/',
      'src/generated/mesh-config.json',
      'templates/',
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { project: ['./tsconfig.json', './tsconfig.node.json'], tsconfigRootDir: import.meta.dirname },
      globals: { ...globals.node, ...globals.serviceworker, WebSocketPair: 'readonly' },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: { arguments: false } }],
      '@typescript-eslint/consistent-type-imports': ['error', { fixStyle: 'inline-type-imports' }],
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', destructuredArrayIgnorePattern: '^_' },
      ],
      // Values crossing into the runtime (bindings, JSON bodies, RPC) are unknown by nature;
      // they are checked where they enter (zod, typed getters), not cast by cast.
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/restrict-template-expressions': [
        'error',
        { allowNumber: true, allowBoolean: true, allowNullish: true },
      ],
      // async functions without await implement async interfaces (KeyResolver, Stage, handlers).
      '@typescript-eslint/require-await': 'off',
      eqeqeq: ['error', 'always'],
    },
  },
  {
    // Tests read JSON bodies as `(await res.json()) as T` throughout; that is clearer than a
    // type argument on every call.
    files: ['test/**/*.ts'],
    rules: { '@typescript-eslint/no-unnecessary-type-assertion': 'off' },
  },
  {
    files: ['**/*.js', '**/*.mjs', '**/*.cjs'],
    ...tseslint.configs.disableTypeChecked,
  },
  {
    files: ['**/*.cjs'],
    languageOptions: { sourceType: 'commonjs', globals: globals.node },
  },
);
