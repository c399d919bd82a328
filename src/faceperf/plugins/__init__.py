"""faceperf's pytest plugins: ``perf`` (profiles, reports and the gates after ``-m perf``) and
``accuracy`` (the candidate folder and tolerances of the accuracy suite). The repository's
conftest.py loads both; they parse their options and call the library."""
