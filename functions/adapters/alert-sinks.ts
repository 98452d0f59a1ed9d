/**
 * Alert sinks (ADR 0016): where alert transitions go.
 *
 * - Locally: `EventLogAlertSink` (an `alert` event per transition in the event log, deterministic id:
 *   idempotent) and `WebhookAlertSink` (a POST per transition to each of the rule's webhook actions).
 * - In AWS: `SnsAlertSink` (one Publish per transition to the stack's encrypted topic; users subscribe
 *   e-mail, SMS or HTTPS endpoints there, filtering on the `severity` / `ruleId` / `kind` attributes) and
 *   `EventBridgeAlertSink` (one PutEvents entry per transition on the stack's bus, source
 *   `dualpath.alerts`, detail-type `Alert opened` / `Alert resolved`).
 *
 * Every message carries the transition id: delivery is at-least-once (the outbox), receivers dedupe on
 * it (`Idempotency-Key` header for webhooks).
 */
import { EventBridgeClient, PutEventsCommand } from '@aws-sdk/client-eventbridge';
import { PublishCommand, SNSClient } from '@aws-sdk/client-sns';
import { TransientError, ValidationError } from '../core/errors.js';
import { type EventLog, eventId, type StoredEvent } from '../core/events.js';
import type { AlertSink } from '../core/rules/delivery.js';
import type { AlertTransition } from '../core/rules/model.js';

/** The JSON body every sink sends: the transition, without the rule's action descriptors. */
export function transitionMessage(t: AlertTransition): Record<string, unknown> {
  const { actions: _actions, ...rest } = t;
  return { ...rest, atIso: new Date(t.at).toISOString() };
}

export class EventLogAlertSink implements AlertSink {
  constructor(private readonly events: EventLog) {}

  async deliver(t: AlertTransition): Promise<void> {
    const e: StoredEvent = {
      id: eventId(t.at, `alert-${t.id}`, 0),
      type: 'alert',
      protocol: t.protocol ?? 'sparkplug',
      deviceId: t.deviceId,
      time: t.at,
      detail: `${t.kind === 'open' ? 'opened' : 'resolved'} ${t.severity}: ${t.ruleName}: ${t.reason}`,
      data: transitionMessage(t),
    };
    if (t.subDevice !== undefined) e.subDevice = t.subDevice;
    if (t.deviceType !== undefined) e.deviceType = t.deviceType;
    await this.events.append([e]);
  }
}

export interface WebhookOptions {
  /** Per request (default 5 s). */
  timeoutMs?: number;
  fetch?: typeof fetch;
}

/** POSTs each transition to the rule's webhook actions (JSON; `Idempotency-Key: <transition id>`). */
export class WebhookAlertSink implements AlertSink {
  private readonly fetch: typeof fetch;
  constructor(private readonly o: WebhookOptions = {}) {
    this.fetch = o.fetch ?? globalThis.fetch;
  }

  async deliver(t: AlertTransition): Promise<void> {
    const body = JSON.stringify(transitionMessage(t));
    for (const a of t.actions) {
      if (a.type !== 'webhook') continue;
      let res: Response;
      try {
        res = await this.fetch(a.url, {
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            'idempotency-key': t.id,
            'user-agent': 'dualpath-alerts',
          },
          body,
          redirect: 'manual',
          signal: AbortSignal.timeout(this.o.timeoutMs ?? 5000),
        });
      } catch (error) {
        throw new TransientError(
          'WEBHOOK_UNREACHABLE',
          `webhook ${new URL(a.url).host} unreachable: ${(error as Error).message}`,
          {
            cause: error,
          },
        );
      }
      await res.body?.cancel().catch(() => {});
      if (res.status < 200 || res.status >= 300) {
        throw new TransientError('WEBHOOK_STATUS', `webhook ${new URL(a.url).host} answered ${res.status}`);
      }
    }
  }
}

/** SNS attributes a subscription's filter policy can match on. */
function snsAttributes(t: AlertTransition) {
  const attrs: Record<string, { DataType: string; StringValue: string }> = {
    kind: { DataType: 'String', StringValue: t.kind },
    severity: { DataType: 'String', StringValue: t.severity },
    ruleId: { DataType: 'String', StringValue: t.ruleId },
    deviceId: { DataType: 'String', StringValue: t.deviceId },
  };
  if (t.deviceType !== undefined) attrs.deviceType = { DataType: 'String', StringValue: t.deviceType };
  return attrs;
}

export class SnsAlertSink implements AlertSink {
  constructor(private readonly o: { client: SNSClient; topicArn: string }) {}

  static forTopic(topicArn: string): SnsAlertSink {
    return new SnsAlertSink({ client: new SNSClient({}), topicArn });
  }

  async deliver(t: AlertTransition): Promise<void> {
    const subject = `[${t.severity}] ${t.kind === 'open' ? 'Alert' : 'Resolved'}: ${t.ruleName}`;
    try {
      await this.o.client.send(
        new PublishCommand({
          TopicArn: this.o.topicArn,
          // SNS subjects: ASCII, at most 100 characters, no line breaks.
          Subject: subject.replace(/[^\x20-\x7e]/g, '?').slice(0, 100),
          Message: JSON.stringify(transitionMessage(t)),
          MessageAttributes: snsAttributes(t),
        }),
      );
    } catch (error) {
      throw new TransientError('SNS_PUBLISH', `SNS publish failed: ${(error as Error).message}`, {
        cause: error,
      });
    }
  }
}

export const ALERT_EVENT_SOURCE = 'dualpath.alerts';

export class EventBridgeAlertSink implements AlertSink {
  constructor(private readonly o: { client: EventBridgeClient; eventBusName: string }) {}

  static forBus(eventBusName: string): EventBridgeAlertSink {
    return new EventBridgeAlertSink({ client: new EventBridgeClient({}), eventBusName });
  }

  async deliver(t: AlertTransition): Promise<void> {
    const custom = t.actions.find((a) => a.type === 'eventbridge');
    const detailType =
      (custom?.type === 'eventbridge' ? custom.detailType : undefined) ??
      (t.kind === 'open' ? 'Alert opened' : 'Alert resolved');
    let out: { FailedEntryCount?: number; Entries?: Array<{ ErrorCode?: string; ErrorMessage?: string }> };
    try {
      out = await this.o.client.send(
        new PutEventsCommand({
          Entries: [
            {
              EventBusName: this.o.eventBusName,
              Source: ALERT_EVENT_SOURCE,
              DetailType: detailType,
              Time: new Date(t.at),
              Resources: [],
              Detail: JSON.stringify(transitionMessage(t)),
            },
          ],
        }),
      );
    } catch (error) {
      throw new TransientError(
        'EVENTBRIDGE_PUT',
        `EventBridge PutEvents failed: ${(error as Error).message}`,
        { cause: error },
      );
    }
    if ((out.FailedEntryCount ?? 0) > 0) {
      const e = out.Entries?.[0];
      throw new TransientError(
        'EVENTBRIDGE_REFUSED',
        `EventBridge refused the event: ${e?.ErrorCode}: ${e?.ErrorMessage}`,
      );
    }
  }
}

/** The AWS sink from the environment: ALERTS_TOPIC_ARN and/or ALERTS_EVENT_BUS (at least one). */
export function awsAlertSinks(env: { topicArn?: string; eventBusName?: string }): AlertSink[] {
  const sinks: AlertSink[] = [];
  if (env.topicArn) sinks.push(SnsAlertSink.forTopic(env.topicArn));
  if (env.eventBusName) sinks.push(EventBridgeAlertSink.forBus(env.eventBusName));
  if (sinks.length === 0)
    throw new ValidationError('rules are on but neither ALERTS_TOPIC_ARN nor ALERTS_EVENT_BUS is set', {
      field: 'ALERTS_TOPIC_ARN',
    });
  return sinks;
}
