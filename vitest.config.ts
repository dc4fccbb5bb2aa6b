import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    reporters: ['default', './test/support/summary-reporter.ts'],
    // Integration tests start emulators on loopback ports; give them room on a 2-core machine.
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // Handlers log through Powertools; tests assert on behaviour, not on log lines.
    env: { POWERTOOLS_LOG_LEVEL: 'SILENT', POWERTOOLS_METRICS_DISABLED: 'true' },
    // `npm test` runs with --coverage: the summary is printed and the floor below fails the run if
    // coverage drops. Code run only in child processes (the local stack's CLI runs) is not counted.
    coverage: {
      provider: 'v8',
      include: ['functions/**/*.ts', 'scripts/**/*.ts', 'infra/**/*.ts', 'web/src/**/*.{ts,tsx}'],
      reporter: ['text-summary', 'json-summary'],
      reportsDirectory: 'coverage',
      // The floor is the level measured when coverage was first printed (72.75% statements, 61.77%
      // branches, 72.89% functions, 74.05% lines), rounded down: raise it as tests are added.
      thresholds: { statements: 72, branches: 61, functions: 72, lines: 74 },
    },
  },
});
