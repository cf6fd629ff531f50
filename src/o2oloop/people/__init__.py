"""People who sign in to the pages: merchant admins, staff and platform admins."""
