"""Hard cases of real customer data, each behind a switch of the generator.

Every switch is a rate; 0 turns its phenomenon off. The defaults are meant to be realistic, not
easy: each of these is a way household-level or thin evidence looks like person-level evidence,
and a resolver tuned on data without them chains households together.

* ``junior_rate``: of the fathers living with a son of the same surname, the share whose son is
  named after them. Father (``Sr``) and son (``Jr``) then share first name, surname, address,
  landline and home IP, and differ in date of birth (and in the suffix, which records often
  leave out).
* ``shared_device_rate``: of the households of two or more, the share with a family tablet. App
  records made on it carry the tablet's device id and the home IP, whichever member signed in.
* ``initial_only_rate``: of point-of-sale records, the share that keep only the first initial of
  the given name ("J" or "J."), as a card swipe or a hurried clerk leaves it.
* ``dob_withheld_rate``: of people, the share who give no source their date of birth, so none of
  their records carries one (on top of the per-source gaps every source has).

Family e-mails and landlines shared by a household are part of the base generator
(``people.make_people``), not switches.

The phenomena draw from their own generators (spawned from the ones the base generator uses),
each decision as a whole array whatever the rate, so that changing one rate changes neither the
base data nor the other phenomena.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

# Of the app records of a member of a household with a family tablet, those made on the tablet.
TABLET_RECORD_SHARE = 0.5


@dataclass(frozen=True)
class Phenomena:
    """Rates of the hard cases; see the module docstring. 0 switches one off."""

    junior_rate: float = 0.2
    shared_device_rate: float = 0.4
    initial_only_rate: float = 0.2
    dob_withheld_rate: float = 0.1

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{f.name} must be between 0 and 1, got {value}")

    @classmethod
    def none(cls) -> Phenomena:
        """Every phenomenon switched off."""
        return cls(**{f.name: 0.0 for f in fields(cls)})


DEFAULT_PHENOMENA = Phenomena()
