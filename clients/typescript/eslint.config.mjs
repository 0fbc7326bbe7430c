// ESLint flat config: typescript-eslint's strict type-checked rules on src/, recommended on the rest.
import js from "@eslint/js";
import tseslint from "typescript-eslint";

export default tseslint.config(
  { ignores: ["dist/", "node_modules/", "src/generated.ts"] },
  js.configs.recommended,
  {
    files: ["src/**/*.ts"],
    extends: [...tseslint.configs.strictTypeChecked],
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      "@typescript-eslint/restrict-template-expressions": ["error", { allowNumber: true }],
      "@typescript-eslint/no-confusing-void-expression": "off",
      "max-lines": ["error", { max: 400, skipBlankLines: true, skipComments: true }],
      "max-lines-per-function": ["error", { max: 60, skipBlankLines: true, skipComments: true }],
    },
  },
  {
    files: ["**/*.mjs", "test/**/*.js", "bench/**/*.mjs", "examples/**/*.mjs", "examples/**/*.js"],
    languageOptions: {
      globals: {
        process: "readonly", console: "readonly", setTimeout: "readonly", clearTimeout: "readonly",
        setInterval: "readonly", clearInterval: "readonly", URL: "readonly", fetch: "readonly",
        AbortController: "readonly", AbortSignal: "readonly", URLSearchParams: "readonly", TextEncoder: "readonly", TextDecoder: "readonly",
        Buffer: "readonly", performance: "readonly", document: "readonly", window: "readonly", Notification: "readonly",
      },
    },
    rules: {
      "max-lines": ["error", { max: 400, skipBlankLines: true, skipComments: true }],
      "no-unused-vars": ["error", { varsIgnorePattern: "^_" }],
    },
  },
);
