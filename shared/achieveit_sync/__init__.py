"""achieveit-sync: publish organisation data to AchieveIt plans and back plans up to S3.

This package is the Lambda layer: every piece of logic lives here, and the Lambda handlers
in ``functions/`` only parse their event and call into it.
"""

__version__ = "0.1.0"
