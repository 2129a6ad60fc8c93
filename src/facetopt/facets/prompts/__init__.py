"""Prompt rules: how model replies are read (labels, outputs, the proposer's prompt), the guard on
proposed edits, and the facet function definition that publish sends.

Entry points: replies.read_value, proposal_reply.read_proposal, prompt_guard.guard_candidate,
publishing.function_definition.
May import: the standard library, pydantic, domain, and the other facets groups.
"""
