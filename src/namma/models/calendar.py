"""Working calendars: holidays and non-working weekdays, institution-wide or for one branch.

A row with ``branch_id`` NULL is the institution's. A branch's calendar is every institution
holiday plus its own, and its own non-working weekdays if it has set them, else the
institution's (D-185). The money core reads none of this: `calendars.queries` hands it a
`WorkingCalendar`.
"""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import (
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    SmallInteger,
    String,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from namma.kit.db import Base


class Holiday(Base):
    """A day on which the institution (``branch_id`` NULL) or one branch does not work."""

    __tablename__ = "holidays"
    __table_args__ = (
        UniqueConstraint("branch_id", "on_date", postgresql_nulls_not_distinct=True),
        CheckConstraint("length(btrim(name)) > 0", name="name_present"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    branch_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("branches.id", ondelete="RESTRICT"), index=True
    )
    on_date: Mapped[dt.date] = mapped_column(Date, index=True)
    name: Mapped[str] = mapped_column(String(120))
    created_by_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    created_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )


class WorkingWeek(Base):
    """The weekdays (0 = Monday … 6 = Sunday) on which the institution or a branch is closed."""

    __tablename__ = "working_weeks"
    __table_args__ = (
        UniqueConstraint("branch_id", postgresql_nulls_not_distinct=True),
        CheckConstraint(
            "non_working_weekdays <@ ARRAY[0,1,2,3,4,5,6]::smallint[] "
            "AND cardinality(non_working_weekdays) < 7",
            name="weekdays_valid",
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    branch_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("branches.id", ondelete="RESTRICT")
    )
    non_working_weekdays: Mapped[list[int]] = mapped_column(ARRAY(SmallInteger))
    updated_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )
