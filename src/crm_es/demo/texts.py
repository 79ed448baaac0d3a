"""The words of the demo: contact summaries, service notes, complaints, comments (Chinese)."""

from __future__ import annotations

from typing import Final

from crm_es.domain.values import Channel, Direction, ServiceKind, ServicePhase, Severity

CONTACT_CHANNELS: Final = (
    (Channel.PHONE, 0.26), (Channel.WECHAT, 0.26), (Channel.SMS, 0.12), (Channel.EMAIL, 0.1),
    (Channel.CHAT, 0.12), (Channel.SOCIAL, 0.07), (Channel.VISIT, 0.07),
)  # fmt: skip
INBOUND: Final = (
    "咨询产品价格和优惠活动", "询问物流进度", "咨询会员积分规则", "询问售后保修政策",
    "咨询新品到货时间", "要求开具发票", "询问门店营业时间", "咨询分期付款", "反馈商品使用问题",
)  # fmt: skip
OUTBOUND: Final = (
    "推荐新品", "邀请参加会员日活动", "确认安装时间", "提醒积分即将过期", "双十一预售通知",
    "年货节活动邀请", "满意度回访", "生日祝福", "续约沟通", "发送产品资料",
)  # fmt: skip
OUTCOMES: Final = (
    "已解答",
    "有购买意向",
    "待跟进",
    "无人接听",
    "已发送资料",
    "已预约到店",
    "暂无需求",
)
FEEDBACK: Final = (
    "服务态度很好", "希望发货更快一些", "价格偏高", "产品质量不错", "客服回复及时",
    "希望增加更多优惠", "包装很用心", "安装师傅很专业",
)  # fmt: skip

SERVICES: Final = {
    ServicePhase.PRE_SALE: (
        (ServiceKind.CONSULTATION, "介绍产品功能与价格方案"),
        (ServiceKind.DEMO, "到店体验演示"),
        (ServiceKind.CONSULTATION, "根据需求推荐配置"),
    ),
    ServicePhase.IN_SALE: (
        (ServiceKind.DELIVERY, "安排送货上门"),
        (ServiceKind.INSTALLATION, "上门安装调试"),
        (ServiceKind.CONSULTATION, "协助办理分期与发票"),
    ),
    ServicePhase.AFTER_SALE: (
        (ServiceKind.MAINTENANCE, "上门检修保养"),
        (ServiceKind.TRAINING, "使用培训"),
        (ServiceKind.MAINTENANCE, "更换配件"),
    ),
}
# Complaint category code -> Chinese descriptions.
COMPLAINTS: Final = {
    "delivery": ("快递延误三天未到", "包裹外箱破损", "送错收货地址"),
    "quality": ("商品有明显瑕疵", "使用一周后出现故障", "与描述不符"),
    "service": ("客服态度冷淡", "电话多次无人接听", "门店导购承诺未兑现"),
    "billing": ("优惠券未抵扣", "重复扣款", "发票信息错误"),
    "installation": ("安装师傅迟到", "安装后漏水", "预约多次改期"),
}
SEVERITIES: Final = ((Severity.LOW, 0.34), (Severity.MEDIUM, 0.36), (Severity.HIGH, 0.22),
                     (Severity.CRITICAL, 0.08))  # fmt: skip
RESOLUTIONS: Final = ("refunded", "replaced", "repaired", "apologized", "compensated", "explained")
ESCALATE_TO: Final = ("staff:manager-zhou", "staff:manager-sun", "team:quality")
FOLLOW_UP_NOTES: Final = (
    "客户表示满意",
    "客户认可处理结果",
    "客户仍有不满，希望补偿更多",
    "客户未再反馈",
)

SURVEY_COMMENTS: Final = {
    True: ("非常满意，会推荐给朋友", "服务很贴心", "物流很快", "产品超出预期"),
    False: ("等待时间太长", "处理问题不够及时", "价格没有优势", "体验一般"),
}
REWARDS: Final = ("满100减10优惠券", "积分兑换保温杯", "免运费券", "会员日九折券", "积分抵现")
CHURN_REASONS: Final = (
    "合同到期未续约",
    "搬迁至外地",
    "转向竞争对手",
    "长期无联系",
    "公司业务调整",
)
RETURN_VISIT: Final = ("询问商品使用体验", "确认安装效果", "回访满意度并介绍保养服务")


def contact_summary(direction: Direction, pick: int) -> str:
    texts = INBOUND if direction is Direction.INBOUND else OUTBOUND
    return texts[pick % len(texts)]
