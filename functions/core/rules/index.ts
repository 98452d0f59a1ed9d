/**
 * Rules, alerts and anomaly detection: the integration surface (ADR 0016).
 *
 * - Language: `parseCondition`, `printCondition`, `RuleSyntaxError` (code, message, position, field).
 * - Documents: `validateRule(body, {id, now, previous})` → `Rule`; `ruleToDocument(rule)`; `Alert`,
 *   `AlertTransition`, `AlertFilter`, `ActionDescriptor`.
 * - Ports: `RuleStore`, `RuleStateStore`, `AlertStore` (+ in-memory implementations); DynamoDB adapters
 *   in functions/adapters/dynamo-rules.ts.
 * - Engine: `RuleEngine` with `begin / evaluate / evaluateClock / commit / abort`.
 */
import { type Rule, validateRule as validateRuleWith } from './model.js';
import { printCondition } from './print.js';

export type { EvalContext } from './compile.js';
export {
  type AnomalyScore,
  type DetectorOptions,
  type DetectorState,
  detect,
  newDetectorState,
} from './detector.js';
export {
  type EngineStats,
  type EvaluationInput,
  numericValue,
  RuleEngine,
  type RuleEngineOptions,
  type RuleHistory,
  type RuleSource,
  readingSeries,
  type Samples,
} from './engine.js';
export { transitionId } from './hash.js';
export { telemetryHistory } from './history.js';
export {
  type ActionDescriptor,
  type Alert,
  type AlertFilter,
  type AlertStatus,
  type AlertTransition,
  globToRegExp,
  parseDurationText,
  RULE_LIMITS,
  type Rule,
  type RuleDocument,
  type RuleSelector,
  ruleToDocument,
  SEVERITIES,
  type Severity,
  validateRuleId,
} from './model.js';
export { printCondition, printExpr } from './print.js';
export {
  type AlertStore,
  fromStoredState,
  InMemoryAlertStore,
  InMemoryRuleStateStore,
  InMemoryRuleStore,
  type RuleState,
  type RuleStateKey,
  type RuleStateStore,
  type RuleStore,
  type StoredRuleState,
  type TransitionRecord,
  toStoredState,
} from './store.js';
export {
  type Condition,
  type Expr,
  FUNCTIONS,
  LANGUAGE_LIMITS,
  parseCondition,
  RuleSyntaxError,
} from './syntax.js';

/**
 * Validates a rule document (POST/PUT /rules): ValidationError naming the field, RuleSyntaxError naming
 * the position in `condition`. The condition is stored in canonical printed form.
 */
export function validateRule(body: unknown, o: { id: string; now: number; previous?: Rule }): Rule {
  return validateRuleWith(body, o, printCondition);
}
