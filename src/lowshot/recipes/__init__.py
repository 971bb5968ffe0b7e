"""Explicit training loops, one per problem family (a new loop is a new recipe)."""
