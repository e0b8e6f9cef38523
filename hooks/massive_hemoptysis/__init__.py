"""Service `massive-hemoptysis` on patient-view: escalation, antithrombotic reversal, haemostasis and sibling-engine
cards. `declaration` (the service), `prefetch` (its templates), `routing` (which cards for which severity), and one
module per card family: `bleeding` (with `sections`), `frame`, `reversal`, `haemostasis`, `causes`, `populations`,
`data_quality`."""
from .declaration import SERVICE

__all__ = ["SERVICE"]
