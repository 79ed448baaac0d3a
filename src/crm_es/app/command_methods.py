"""One method per command on the CRM: ``crm.record_purchase(customer="C-1", …)``.

Keyword arguments are the command's fields (see :mod:`crm_es.domain.commands`); they are
validated exactly like the JSON wire form, so a wrong type raises ``msgspec.ValidationError`` with
the ``$.path`` of the field. Kept apart from the service so each module stays one concept.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import TYPE_CHECKING, Any

from crm_es.domain import commands as cmd

if TYPE_CHECKING:
    from crm_es.app.results import CommandResult


class CommandMethods:
    @abstractmethod
    def _run(self, command_type: type[cmd.Command], fields: dict[str, Any]) -> CommandResult: ...

    def register_customer(self, **fields: Any) -> CommandResult:
        return self._run(cmd.RegisterCustomer, fields)

    def update_profile(self, **fields: Any) -> CommandResult:
        return self._run(cmd.UpdateProfile, fields)

    def change_tags(self, **fields: Any) -> CommandResult:
        return self._run(cmd.ChangeTags, fields)

    def assign_owner(self, **fields: Any) -> CommandResult:
        return self._run(cmd.AssignOwner, fields)

    def change_consent(self, **fields: Any) -> CommandResult:
        return self._run(cmd.ChangeConsent, fields)

    def log_contact(self, **fields: Any) -> CommandResult:
        return self._run(cmd.LogContact, fields)

    def record_purchase(self, **fields: Any) -> CommandResult:
        return self._run(cmd.RecordPurchase, fields)

    def refund_purchase(self, **fields: Any) -> CommandResult:
        return self._run(cmd.RefundPurchase, fields)

    def record_service(self, **fields: Any) -> CommandResult:
        return self._run(cmd.RecordService, fields)

    def open_opportunity(self, **fields: Any) -> CommandResult:
        return self._run(cmd.OpenOpportunity, fields)

    def advance_opportunity(self, **fields: Any) -> CommandResult:
        return self._run(cmd.AdvanceOpportunity, fields)

    def win_opportunity(self, **fields: Any) -> CommandResult:
        return self._run(cmd.WinOpportunity, fields)

    def lose_opportunity(self, **fields: Any) -> CommandResult:
        return self._run(cmd.LoseOpportunity, fields)

    def file_complaint(self, **fields: Any) -> CommandResult:
        return self._run(cmd.FileComplaint, fields)

    def escalate_complaint(self, **fields: Any) -> CommandResult:
        return self._run(cmd.EscalateComplaint, fields)

    def resolve_complaint(self, **fields: Any) -> CommandResult:
        return self._run(cmd.ResolveComplaint, fields)

    def reopen_complaint(self, **fields: Any) -> CommandResult:
        return self._run(cmd.ReopenComplaint, fields)

    def follow_up_complaint(self, **fields: Any) -> CommandResult:
        return self._run(cmd.FollowUpComplaint, fields)

    def answer_survey(self, **fields: Any) -> CommandResult:
        return self._run(cmd.AnswerSurvey, fields)

    def grant_points(self, **fields: Any) -> CommandResult:
        return self._run(cmd.GrantPoints, fields)

    def redeem_points(self, **fields: Any) -> CommandResult:
        return self._run(cmd.RedeemPoints, fields)

    def expire_points(self, **fields: Any) -> CommandResult:
        return self._run(cmd.ExpirePoints, fields)

    def review_tier(self, **fields: Any) -> CommandResult:
        return self._run(cmd.ReviewTier, fields)

    def schedule_care_task(self, **fields: Any) -> CommandResult:
        return self._run(cmd.ScheduleCareTask, fields)

    def complete_care_task(self, **fields: Any) -> CommandResult:
        return self._run(cmd.CompleteCareTask, fields)

    def cancel_care_task(self, **fields: Any) -> CommandResult:
        return self._run(cmd.CancelCareTask, fields)

    def churn_customer(self, **fields: Any) -> CommandResult:
        return self._run(cmd.ChurnCustomer, fields)

    def win_back_customer(self, **fields: Any) -> CommandResult:
        return self._run(cmd.WinBackCustomer, fields)

    def erase_personal_data(self, **fields: Any) -> CommandResult:
        return self._run(cmd.ErasePersonalData, fields)

    def merge_customers(self, **fields: Any) -> CommandResult:
        return self._run(cmd.MergeCustomers, fields)

    def set_goal(self, **fields: Any) -> CommandResult:
        return self._run(cmd.SetGoal, fields)

    def revise_goal(self, **fields: Any) -> CommandResult:
        return self._run(cmd.ReviseGoal, fields)

    def close_goal(self, **fields: Any) -> CommandResult:
        return self._run(cmd.CloseGoal, fields)
