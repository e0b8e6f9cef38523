"""Service `hemoptysis-order-safety` on order-sign: guards the orders about to be signed.

- A draft anticoagulant / antiplatelet (antithrombotics.toml) for a patient with active hemoptysis on record
  -> critical card, with a suggestion to delete the draft.
- Tranexamic acid drafted for a patient with an active thromboembolic condition (PE on record) -> warning.

`declaration` (the service), `drafts` (reading context.draftOrders), `routing` (which cards), `draft_cards`.
"""
from .declaration import SERVICE

__all__ = ["SERVICE"]
