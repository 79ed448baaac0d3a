"""Design §4's JSON command examples: every version must accept them."""

from __future__ import annotations

DESIGN_EXAMPLES = [
    '{"type":"register_customer","external_ref":"C-1","name":"王芳","email":"wf@example.com","phone":"+86 138 0000 0000","region":"华东","kind":"individual"}',
    '{"type":"record_purchase","customer":"C-1","order_id":"O-1","amount":"129.90","currency":"CNY","occurred_at":"2026-01-05T10:00:00+08:00"}',
    '{"type":"log_contact","customer":"C-1","channel":"phone","direction":"outbound","summary":"回访"}',
    '{"type":"file_complaint","customer":"C-1","complaint_id":"K-1","category":"delivery","severity":"high"}',
    '{"type":"resolve_complaint","customer":"C-1","complaint_id":"K-1","resolution":"refunded"}',
    '{"type":"answer_survey","customer":"C-1","survey_id":"S-1","metric":"csat","score":5}',
    '{"type":"grant_points","customer":"C-1","points":100,"reason":"purchase"}',
    '{"type":"redeem_points","customer":"C-1","points":50,"reward":"coupon"}',
]
