"""Reminders: 催付 stages and follow-ups as database rows; planned when events arrive, fired by the ticker."""
