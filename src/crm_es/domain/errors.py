"""One error hierarchy for everything a caller can get wrong.

Every error names the offending customer, id or field and value, so a message read in a log or in
the output of ``crm-es exec`` says what to fix without the caller having to look anything up.
A command that raises a :class:`CrmError` has stored nothing.
"""

from __future__ import annotations


class CrmError(Exception):
    """Base of every error crm_es raises for bad input or a broken business rule."""


class InvalidCommand(CrmError):
    """The command is malformed: wrong type, missing field, bad value (schema-level)."""


class InvalidValue(CrmError):
    """A field has a value the domain does not accept (range, precision, scale, format)."""

    def __init__(self, field: str, value: object, why: str) -> None:
        super().__init__(f"{field}: {why} (got {value!r})")
        self.field = field
        self.value = value


class UnknownCurrency(InvalidValue):
    def __init__(self, currency: str) -> None:
        super().__init__("currency", currency, "not a supported ISO 4217 currency code")


class FutureBusinessTime(InvalidValue):
    def __init__(self, occurred_at: object, limit: object) -> None:
        super().__init__(
            "occurred_at", str(occurred_at), f"business time is in the future (later than {limit})"
        )


class CustomerNotFound(CrmError):
    def __init__(self, customer: str) -> None:
        super().__init__(f"customer {customer!r} not found")
        self.customer = customer


class CustomerAlreadyRegistered(CrmError):
    def __init__(self, external_ref: str, customer_id: object) -> None:
        super().__init__(
            f"customer with external_ref {external_ref!r} is already registered (id {customer_id})"
        )
        self.external_ref = external_ref


class DuplicateId(CrmError):
    """A per-customer unique id (order, complaint, survey, care task) is used a second time."""

    def __init__(self, kind: str, value: str, customer_id: object) -> None:
        super().__init__(f"{kind} {value!r} already exists for customer {customer_id}")
        self.kind = kind
        self.value = value


class UnknownId(CrmError):
    """A command refers to an order, complaint or care task this customer does not have."""

    def __init__(self, kind: str, value: str, customer_id: object) -> None:
        super().__init__(f"unknown {kind} {value!r} for customer {customer_id}")
        self.kind = kind
        self.value = value


class InvalidState(CrmError):
    """The thing exists, but its state forbids the command (resolve a resolved complaint …)."""


class RefundExceedsPaid(CrmError):
    def __init__(self, order_id: str, requested: str, refundable: str) -> None:
        super().__init__(
            f"refund of {requested} on order {order_id!r} exceeds "
            f"what remains refundable ({refundable})"
        )


class InsufficientPoints(CrmError):
    def __init__(self, requested: int, available: int) -> None:
        super().__init__(f"cannot redeem {requested} points: only {available} available")
        self.requested = requested
        self.available = available


class CustomerErased(CrmError):
    def __init__(self, customer_id: object, what: str) -> None:
        super().__init__(f"customer {customer_id} has had personal data erased; cannot {what}")


class ConcurrencyConflict(CrmError):
    """A command kept colliding with concurrent writers and gave up after bounded retries."""

    def __init__(self, customer_id: object, attempts: int) -> None:
        super().__init__(
            f"customer {customer_id} was changed concurrently {attempts} times in a row; "
            "retry later"
        )
        self.customer_id = customer_id
        self.attempts = attempts


class IdempotencyConflict(CrmError):
    """The same ``command_id`` was sent again with a different payload."""

    def __init__(self, command_id: str) -> None:
        super().__init__(
            f"command_id {command_id!r} was already used for a different command payload"
        )
        self.command_id = command_id


class TamperDetected(CrmError):
    """Stored events no longer match their hash chain, or the store no longer matches a digest."""


class ImportRefused(CrmError):
    """An audit export cannot be imported (bad file, or its streams already exist here)."""


class PersonalDataUnreadable(CrmError):
    """A personal field cannot be decrypted with the customer's key (wrong or replaced key)."""

    def __init__(self, customer_id: object, why: str) -> None:
        super().__init__(f"personal data of customer {customer_id} cannot be decrypted: {why}")


class CustomerNotYetKnown(CustomerNotFound):
    """The customer exists, but not yet at the asked business or knowledge time."""

    def __init__(self, customer: str, when: str) -> None:
        super().__init__(customer)
        self.args = (f"customer {customer!r} did not exist yet {when}",)


class PermissionDenied(CrmError):
    """The principal may not do this (to this customer): nothing was stored or shown."""

    def __init__(
        self, principal: object, action: str, customer: object = None, why: str = ""
    ) -> None:
        on = f" customer {customer}" if customer is not None else ""
        if customer is not None and not action.startswith(("read", "answer")):
            on = f" on{on}"
        super().__init__(f"permission denied: {principal} may not {action}{on}{why and ': ' + why}")
        self.principal = principal
        self.action = action
        self.customer = customer


class CustomerMergedAway(InvalidState):
    """The customer was merged into another (a duplicate record, closed): commands go to the
    survivor it names."""

    def __init__(self, customer_id: object, survivor_id: object, what: str) -> None:
        super().__init__(
            f"customer {customer_id} was merged into customer {survivor_id} and is closed; "
            f"cannot {what}: send it to {survivor_id}"
        )
        self.customer_id = customer_id
        self.survivor_id = survivor_id
