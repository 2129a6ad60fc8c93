"""The eval file `facetopt eval` hands to `bt eval` (or `braintrust eval`).

It is configured entirely through environment variables set by `facetopt eval` (bt passes no
arguments to Python eval files): see facetopt.services.eval.arguments. Importing it registers one
`Eval` with the runner, which then runs it.
"""

from braintrust import Eval

from facetopt.clients.braintrust.parent_watch import watch_parent
from facetopt.services.eval.arguments import eval_arguments

watch_parent()  # the runner dies with facetopt, however facetopt ends
Eval(**eval_arguments())
