// The "What if…" form's request body (node --test web-ui/tests/).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { candidateFrom } from '../js/whatif.js';

test('the fields a reader filled become the candidate policy', () => {
  const policy = candidateFrom({
    minReplicas: ' 2 ', maxReplicas: '20', upscaleStabilization: '', downscaleStabilization: '1m',
    behavior: '{"scaleDown": {"policies": [{"type": "Pods", "value": 1, "periodSeconds": 60}]}}', predictive: '',
  });
  assert.deepEqual(policy, {
    minReplicas: 2, maxReplicas: 20, downscaleStabilization: '1m',
    behavior: { scaleDown: { policies: [{ type: 'Pods', value: 1, periodSeconds: 60 }] } },
  });
  assert.deepEqual(candidateFrom({}), {}, 'an empty form keeps the target’s own policy');
  assert.deepEqual(candidateFrom({ calculation: ' cpu-50 ' }), { calculation: { profile: 'cpu-50' } });
  const specs = '[{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}}}]';
  assert.deepEqual(candidateFrom({ calculation: specs }), { calculation: { kubernetesMetricSpecs: JSON.parse(specs) } });
});

test('bad fields name themselves', () => {
  assert.throws(() => candidateFrom({ maxReplicas: 'ten' }), /Max replicas must be a whole number/);
  assert.throws(() => candidateFrom({ behavior: '{nope' }), /Behavior is not valid JSON/);
  assert.throws(() => candidateFrom({ calculation: '[{' }), /Calculation is not valid JSON/);
});
